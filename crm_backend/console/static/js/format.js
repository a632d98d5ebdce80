/* Times and durations as staff read them; ids compared whether they come from JSON or the DOM. */

/** Ids from JSON are numbers, ids from data attributes are strings: compare them as text. */
export function same(a, b) {
  return a !== null && a !== undefined && b !== null && b !== undefined && String(a) === String(b);
}

function pad(n) { return String(n).padStart(2, "0"); }

/** Seconds as mm:ss (minutes keep counting past 59); negative values are shown as their absolute. */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(Math.abs(Number(seconds) || 0)));
  return pad(Math.floor(s / 60)) + ":" + pad(s % 60);
}

export function parseTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** Today's times as hh:mm, older ones with their date. */
export function formatTime(iso) {
  const t = parseTime(iso);
  if (t === null) return "";
  const d = new Date(t);
  const now = new Date();
  const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
  if (d.toDateString() === now.toDateString()) return hm;
  const md = pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  return (d.getFullYear() === now.getFullYear() ? md : d.getFullYear() + "-" + md) + " " + hm;
}

export function formatDateTime(iso) {
  const t = parseTime(iso);
  if (t === null) return "";
  const d = new Date(t);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}

/** The day separator in a conversation: 今天, 昨天 or the date. */
export function dayLabel(iso) {
  const t = parseTime(iso);
  if (t === null) return "";
  const d = new Date(t);
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (d.toDateString() === today.toDateString()) return "今天";
  if (d.toDateString() === yesterday.toDateString()) return "昨天";
  return d.getFullYear() + "年" + (d.getMonth() + 1) + "月" + d.getDate() + "日";
}
