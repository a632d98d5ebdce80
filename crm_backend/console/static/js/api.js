/* The console's HTTP client: JSON with the session cookie, the CSRF token on unsafe methods. */

import { state } from "./state.js";

export const API = "/api/console";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const hooks = { unauthorized: () => {}, refreshed: () => {} };

/** What to do when the session is gone (401), and with a fresh Me after the CSRF token changed. */
export function onSession(handlers) {
  Object.assign(hooks, handlers);
}

export class ApiError extends Error {
  constructor(status, detail, retryAfter, errors) {
    super(detail || "HTTP " + status);
    this.status = status;
    this.detail = detail || "";
    this.retryAfter = retryAfter;
    /** For invalid input (400): `[{"loc", "msg"}]`, which field was refused and why. */
    this.errors = errors || [];
  }
}

/** FastAPI's `detail`: a sentence, or for invalid input a list of problems. */
function detailText(data) {
  if (data === null) return "";
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) return data.detail.map((d) => d.msg).join("；");
  return "";
}

/** JSON request with the session cookie; unsafe methods carry the CSRF token. */
export async function api(method, path, body, options = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method) && state.me !== null) headers["X-CSRF-Token"] = state.me.csrf_token;
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (_) {
    throw new ApiError(0, "网络连接失败");
  }
  let data = null;
  if (response.status !== 204) {
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
  }
  if (!response.ok) {
    const detail = detailText(data);
    const errors = data !== null && Array.isArray(data.errors) ? data.errors : [];
    const error = new ApiError(response.status, detail, response.headers.get("Retry-After"), errors);
    if (response.status === 401 && !options.anonymous) hooks.unauthorized();
    if (response.status === 403 && /csrf/i.test(detail) && !options.retried && state.me !== null) {
      // The session's token changed (e.g. another tab logged in again): take the new one, retry once.
      const me = await api("GET", "/me");
      if (state.me !== null) {
        hooks.refreshed(me);
        return api(method, path, body, { ...options, retried: true });
      }
    }
    throw error;
  }
  return data;
}

/** An error as one sentence for staff. */
export function errorText(error) {
  if (!(error instanceof ApiError)) return "出错了：" + String(error && error.message || error);
  const detail = error.detail ? "：" + error.detail : "";
  switch (error.status) {
    case 0: return "网络连接失败，请检查网络";
    case 400: return "请求有误" + detail;
    case 401: return "登录已过期，请重新登录";
    case 403: return "没有权限执行此操作" + detail;
    case 404: return "未找到" + detail;
    case 409: return "操作冲突" + detail;
    case 422: return "输入不完整或格式不对" + detail;
    case 429: return "操作过于频繁，请稍后再试";
    default: return error.status >= 500 ? "服务器出错（" + error.status + "），请稍后再试" : "请求失败（" + error.status + "）" + detail;
  }
}
