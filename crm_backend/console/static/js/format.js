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

/* Dates and times are always the hospital's (Asia/Shanghai), whatever the zone of the computer the
 * console runs on, and always say the day: "今天 03:25", "昨天 22:10", "12月3日 09:00", "2025年12月3日
 * 09:00". formatWhen is the one function that writes them; the names below are its uses. */

export const HOSPITAL_TIME_ZONE = "Asia/Shanghai";

const HOSPITAL_CLOCK = new Intl.DateTimeFormat("en-US", {
  timeZone: HOSPITAL_TIME_ZONE, year: "numeric", month: "numeric", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

/** The hospital's wall clock at `ms`: {year, month, day, dayNumber, hm, hms}. */
function hospitalClock(ms) {
  const part = {};
  for (const p of HOSPITAL_CLOCK.formatToParts(new Date(ms))) part[p.type] = p.value;
  const year = Number(part.year);
  const month = Number(part.month);
  const day = Number(part.day);
  const hm = pad(Number(part.hour)) + ":" + pad(Number(part.minute));
  return { year, month, day, dayNumber: Date.UTC(year, month - 1, day) / 86400000, hm, hms: hm + ":" + pad(Number(part.second)) };
}

const NEAR_DAYS = { "-1": "昨天", 0: "今天", 1: "明天" };

function dayName(at, now) {
  const near = NEAR_DAYS[at.dayNumber - now.dayNumber];
  if (near) return near;
  const md = at.month + "月" + at.day + "日";
  return at.year === now.year ? md : at.year + "年" + md;
}

/** An ISO time as staff read it: hospital time with its day; `seconds` adds seconds, `dayOnly` drops
 * the time. `now` (ms) is for tests. */
export function formatWhen(iso, { seconds = false, dayOnly = false, now = Date.now() } = {}) {
  const t = parseTime(iso);
  if (t === null) return "";
  const at = hospitalClock(t);
  const day = dayName(at, hospitalClock(now));
  return dayOnly ? day : day + " " + (seconds ? at.hms : at.hm);
}

/** Message, note, queue and panel times. */
export function formatTime(iso) { return formatWhen(iso); }

/** Audit entries: to the second. */
export function formatDateTime(iso) { return formatWhen(iso, { seconds: true }); }

/** The day separator in a conversation: 今天, 昨天 or the date. */
export function dayLabel(iso) { return formatWhen(iso, { dayOnly: true }); }

/** The hospital's calendar date at `ms`, `addDays` later, as YYYY-MM-DD (for date inputs). */
export function hospitalDate(ms = Date.now(), addDays = 0) {
  const at = hospitalClock(ms);
  return new Date((at.dayNumber + addDays) * 86400000).toISOString().slice(0, 10);
}
