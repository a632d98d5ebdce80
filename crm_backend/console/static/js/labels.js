/* The words staff read for the codes the API sends (docs/CONSOLE_API.md). */

export const PRIORITY = { urgent: "紧急", high: "高", normal: "普通" };
export const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2 };
export const ROLE = { agent: "客服", nurse: "护士", clinician: "临床医生", complaints_office: "投诉办", supervisor: "主管", admin: "管理员" };
export const PRESENCE = { online: "在线", away: "离开", offline: "离线" };
export const ESCALATION_STATUS = { queued: "排队中", assigned: "处理中", resolved: "已解决" };
export const CONVERSATION_STATUS = { bot: "机器人服务", escalated: "人工处理", closed: "已结束" };
export const SENDER = { patient: "患者", bot: "机器人", system: "系统", agent: "坐席" };
export const RELATIONSHIP = { self: "本人", child: "子女", parent: "父母", spouse: "配偶", other: "其他" };
export const MSG_TYPE = {
  image: "[图片]", voice: "[语音]", video: "[视频]", shortvideo: "[小视频]", location: "[位置]",
  link: "[链接]", file: "[文件]", event: "[事件]", template: "[模板消息]", news: "[图文]",
};

/** Escalation reasons the system writes as codes, in words; free-text reasons are shown as they are. */
const REASONS = {
  patient_request: "患者要求转人工",
  staff_message: "工作人员主动发起消息", // escalations.service.STAFF_MESSAGE
  complaint: "投诉",
  nursing_request: "患者找护士",
  booking_help: "挂号遇到困难",
  bot_fallback: "机器人两次未能理解",
  bot_unavailable: "系统繁忙，机器人未能回复",
  consent_declined: "未同意健康信息授权，需人工帮助",
  emergency: "危急征象：已建议拨打120", // the red-flag screen (conversations/route.py EMERGENCY)
  complaint_safety: "投诉涉及安全风险", // complaints/service.py SAFETY_REASON
};

export function reasonText(reason) {
  return REASONS[reason] || reason;
}
