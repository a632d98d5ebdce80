/* Building the page: every piece of data goes in with textContent, never parsed as markup. */

export const $ = (id) => document.getElementById(id);

/** Create an element; `text` always goes in as textContent, never as markup. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function toast(text, kind) {
  const node = el("div", "toast" + (kind ? " " + kind : ""), text);
  $("toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 6000 : 3500);
}

/** Puts `rows` into the table's body, or one row saying `emptyText` across `columns` cells. */
export function fillTable(tableId, rows, emptyText, columns) {
  if (!rows.length) {
    const td = el("td", "p-empty", emptyText);
    td.colSpan = columns;
    rows = [el("tr")];
    rows[0].append(td);
  }
  $(tableId).tBodies[0].replaceChildren(...rows);
}

/** Asks a yes/no question in the page's own dialog; resolves to true for 确定. */
export function confirmDialog(title, text) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}
