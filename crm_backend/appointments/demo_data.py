"""Demo clinics for a Shenzhen general hospital (27 departments), so `make run` has something to book.

Loaded only into an empty departments table, so a hospital's real schedules are never touched. All
doctors are invented. Run `python -m crm_backend.appointments.demo_data` after migrating.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_backend.appointments.models import Department, Doctor, HalfDay, Schedule
from crm_backend.appointments.service import hospital_today
from crm_backend.config import get_settings
from crm_backend.database.core import Database, utcnow

DAYS = 14

#: code, official name, patient-facing name, aliases patients use. A general hospital's outpatient
#: departments; their triage descriptions and symptom terms are in crm_backend/triage/departments.yml
#: (same codes and patient-facing names), loaded by `python -m crm_backend.triage.seed`.
DEPARTMENTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("EMER", "急诊科", "急诊科", ("急诊", "急诊室", "急救")),
    ("GIM", "全科医学科", "全科医学科（普通内科）", ("内科", "普通内科", "全科", "大内科")),
    ("RESP", "呼吸与危重症医学科", "呼吸内科", ("呼吸科", "呼吸内科", "肺科")),
    ("CARD", "心血管内科", "心内科", ("心内科", "心脏内科", "心脏科", "心血管科")),
    ("GAST", "消化内科", "消化内科（肠胃科）", ("消化科", "肠胃科", "胃肠科", "脾胃科", "胃病科")),
    ("NEUR", "神经内科", "神经内科", ("神经科", "神内", "脑科")),
    ("ENDO", "内分泌科", "内分泌科", ("内分泌", "糖尿病科", "代谢科")),
    ("NEPH", "肾内科", "肾内科", ("肾病科", "肾科")),
    ("HEMA", "血液内科", "血液内科", ("血液科",)),
    ("RHEU", "风湿免疫科", "风湿免疫科", ("风湿科", "免疫科")),
    ("INF", "感染性疾病科", "感染性疾病科（感染科）", ("感染科", "传染科", "肝炎门诊", "发热门诊")),
    ("ONC", "肿瘤科", "肿瘤科", ("肿瘤内科", "癌症科", "放疗科")),
    ("GSUR", "普通外科", "普通外科", ("外科", "普外科", "普外", "乳腺外科", "甲状腺外科")),
    ("PROC", "肛肠外科", "肛肠科", ("肛肠外科", "痔疮科")),
    ("ORTH", "骨科", "骨科", ("骨伤科", "脊柱外科", "关节外科", "运动医学科")),
    ("URO", "泌尿外科", "泌尿外科", ("泌尿科",)),
    ("ANDR", "男科", "男科", ("男性科", "男性专科")),
    ("GYN", "妇科", "妇科", ("妇科门诊", "妇产科")),
    ("OBS", "产科", "产科", ("产科门诊", "孕妇门诊")),
    ("PED", "儿科", "儿科", ("小儿科", "儿童科", "儿内科", "小儿内科")),
    ("DERM", "皮肤科", "皮肤科", ("皮肤性病科", "皮肤病科")),
    ("OPH", "眼科", "眼科", ("眼睛科",)),
    ("ENT", "耳鼻咽喉头颈外科", "耳鼻喉科", ("耳鼻喉", "五官科", "耳鼻咽喉科")),
    ("STOM", "口腔科", "口腔科（牙科）", ("牙科", "口腔", "看牙")),
    ("PSY", "精神心理科", "精神心理科", ("心理科", "精神科", "心理咨询", "心理门诊")),
    ("TCM", "中医科", "中医科", ("中医", "中医内科", "国医馆")),
    ("REHAB", "康复医学科", "康复医学科", ("康复科", "理疗科")),
)

MON_TO_SAT = (1, 2, 3, 4, 5, 6)
EVERY_DAY = (1, 2, 3, 4, 5, 6, 7)

#: department code → (name, title, specialty, ISO weekdays worked, half-day) per doctor; invented people.
DOCTORS: dict[str, tuple[tuple[str, str, str, tuple[int, ...], HalfDay], ...]] = {
    "EMER": (
        ("高志远", "副主任医师", "急危重症、创伤", EVERY_DAY, HalfDay.AM),
        ("朱晓丹", "主治医师", "急腹症、中毒", EVERY_DAY, HalfDay.PM),
    ),
    "GIM": (
        ("林振华", "主任医师", "发热、慢性病综合管理", (1, 3, 5), HalfDay.AM),
        ("陈雅琴", "主治医师", "常见病、多发病", MON_TO_SAT, HalfDay.PM),
        ("黄子健", "主治医师", "体检异常解读", (2, 4, 6, 7), HalfDay.AM),
    ),
    "RESP": (
        ("方立新", "主任医师", "慢阻肺、肺结节", (1, 3, 5), HalfDay.AM),
        ("袁婷婷", "主治医师", "哮喘、慢性咳嗽", MON_TO_SAT, HalfDay.PM),
    ),
    "CARD": (
        ("郑国栋", "主任医师", "冠心病、心力衰竭", (2, 4), HalfDay.AM),
        ("吴晓岚", "副主任医师", "高血压、心律失常", (1, 3, 5), HalfDay.PM),
        ("邱文博", "主治医师", "胸闷胸痛、血脂异常", MON_TO_SAT, HalfDay.AM),
    ),
    "GAST": (
        ("梁慧敏", "主任医师", "胃镜、消化道早癌", (1, 4), HalfDay.AM),
        ("许嘉豪", "副主任医师", "肝病、胰腺疾病", (2, 3, 5), HalfDay.PM),
        ("蔡静怡", "主治医师", "胃炎、肠易激综合征", MON_TO_SAT, HalfDay.AM),
    ),
    "NEUR": (
        ("唐卫东", "主任医师", "脑血管病、头痛", (1, 3, 5), HalfDay.AM),
        ("冯晓燕", "主治医师", "眩晕、睡眠障碍", MON_TO_SAT, HalfDay.PM),
    ),
    "ENDO": (
        ("韩雪梅", "主任医师", "糖尿病、甲状腺疾病", (2, 4), HalfDay.AM),
        ("曹俊", "主治医师", "痛风、肥胖", MON_TO_SAT, HalfDay.PM),
    ),
    "NEPH": (
        ("沈建国", "副主任医师", "肾炎、慢性肾病", (1, 3, 5), HalfDay.AM),
        ("薛丽华", "主治医师", "透析、蛋白尿", (2, 4, 6), HalfDay.PM),
    ),
    "HEMA": (
        ("孔令辉", "副主任医师", "贫血、血小板疾病", (1, 4), HalfDay.AM),
        ("白雪", "主治医师", "白血病、淋巴瘤随访", (2, 3, 5, 6), HalfDay.PM),
    ),
    "RHEU": (
        ("顾明", "副主任医师", "类风湿关节炎、红斑狼疮", (2, 4), HalfDay.AM),
        ("汤颖", "主治医师", "痛风、强直性脊柱炎", (1, 3, 5, 6), HalfDay.PM),
    ),
    "INF": (
        ("姚文斌", "副主任医师", "病毒性肝炎", (1, 3, 5), HalfDay.AM),
        ("夏雨晴", "主治医师", "不明原因发热、结核", (2, 4, 6), HalfDay.PM),
    ),
    "ONC": (
        ("范志诚", "主任医师", "肺癌、消化道肿瘤", (2, 5), HalfDay.AM),
        ("傅佳", "主治医师", "化疗、癌痛管理", MON_TO_SAT, HalfDay.PM),
    ),
    "GSUR": (
        ("罗建平", "主任医师", "甲状腺、乳腺外科", (2, 5), HalfDay.AM),
        ("何俊杰", "主治医师", "疝气、阑尾炎、体表肿物", (1, 2, 3, 4, 5), HalfDay.PM),
    ),
    "PROC": (
        ("金海波", "副主任医师", "痔疮、肛瘘", (1, 3, 5), HalfDay.AM),
        ("杜晓敏", "主治医师", "肛裂、便血", (2, 4, 6), HalfDay.PM),
    ),
    "ORTH": (
        ("钱大伟", "主任医师", "脊柱外科、腰椎间盘突出", (1, 4), HalfDay.AM),
        ("孙浩然", "副主任医师", "关节外科、运动损伤", (2, 3, 5), HalfDay.AM),
        ("马俊", "主治医师", "骨折、创伤", MON_TO_SAT, HalfDay.PM),
    ),
    "URO": (
        ("陆振宇", "副主任医师", "泌尿系结石、前列腺", (1, 3, 5), HalfDay.AM),
        ("秦磊", "主治医师", "尿路感染、包皮手术", (2, 4, 6), HalfDay.PM),
    ),
    "ANDR": (
        ("潘德明", "副主任医师", "男性不育", (2, 4), HalfDay.AM),
        ("余涛", "主治医师", "性功能障碍", (1, 3, 5, 6), HalfDay.PM),
    ),
    "GYN": (
        ("叶晓彤", "副主任医师", "妇科炎症、月经不调", (2, 3, 5, 6), HalfDay.PM),
        ("宋佩玲", "主治医师", "子宫肌瘤、宫颈筛查", (1, 2, 4), HalfDay.AM),
    ),
    "OBS": (
        ("钟淑仪", "主任医师", "高危妊娠", (1, 4), HalfDay.AM),
        ("严晓慧", "主治医师", "产前检查、孕期保健", MON_TO_SAT, HalfDay.PM),
    ),
    "PED": (
        ("曾美玲", "主任医师", "小儿呼吸系统疾病", (1, 3, 5), HalfDay.AM),
        ("谢宇航", "副主任医师", "儿童生长发育", (2, 4, 6), HalfDay.AM),
        ("彭丽萍", "主治医师", "小儿发热、腹泻", EVERY_DAY, HalfDay.PM),
    ),
    "DERM": (
        ("杨海涛", "副主任医师", "湿疹、银屑病", (1, 3, 5), HalfDay.AM),
        ("刘思雨", "主治医师", "痤疮、皮肤过敏", (2, 4, 6), HalfDay.PM),
    ),
    "OPH": (
        ("张明远", "主任医师", "白内障、青光眼", (2, 4), HalfDay.AM),
        ("苏可欣", "主治医师", "儿童近视、干眼症", (1, 3, 5, 6), HalfDay.PM),
    ),
    "ENT": (
        ("赖志强", "副主任医师", "鼻炎、鼻窦炎", (1, 3, 5), HalfDay.AM),
        ("温佳琪", "主治医师", "咽喉炎、中耳炎", (2, 4, 6), HalfDay.PM),
    ),
    "STOM": (
        ("邓伟雄", "副主任医师", "牙体牙髓、根管治疗", (1, 2, 4), HalfDay.AM),
        ("江诗涵", "主治医师", "洗牙、儿童口腔", (3, 5, 6, 7), HalfDay.PM),
    ),
    "PSY": (
        ("任静", "副主任医师", "抑郁、焦虑", (1, 3, 5), HalfDay.AM),
        ("程一鸣", "主治医师", "青少年心理、睡眠", (2, 4, 6), HalfDay.PM),
    ),
    "TCM": (
        ("贺仲景", "主任医师", "中医内科、脾胃调理", (2, 4, 6), HalfDay.AM),
        ("龚晓兰", "主治医师", "针灸、妇科调理", (1, 3, 5), HalfDay.PM),
    ),
    "REHAB": (
        ("邵永康", "副主任医师", "神经康复、脑卒中后康复", (1, 3, 5), HalfDay.AM),
        ("阎丽", "主治医师", "骨科术后康复、理疗", (2, 4, 6), HalfDay.PM),
    ),
}

#: Places per session by title: senior doctors see fewer patients per half-day.
CAPACITY = {"主任医师": 12, "副主任医师": 18, "主治医师": 25}


async def load_demo_data(session: AsyncSession, start: date, days: int = DAYS) -> int:
    """Add the demo departments, doctors and `days` days of sessions from `start`; returns sessions added."""
    added = 0
    for code, name, patient_name, aliases in DEPARTMENTS:
        department = Department(code=code, name=name, patient_name=patient_name, aliases=list(aliases))
        session.add(department)
        await session.flush()
        for doctor_name, title, specialty, weekdays, half_day in DOCTORS[code]:
            doctor = Doctor(department_id=department.id, name=doctor_name, title=title, specialty=specialty)
            session.add(doctor)
            await session.flush()
            for offset in range(days):
                day = start + timedelta(days=offset)
                if day.isoweekday() in weekdays:
                    session.add(
                        Schedule(doctor_id=doctor.id, date=day, half_day=half_day, capacity=CAPACITY[title])
                    )
                    added += 1
    await session.flush()
    return added


async def load_demo_data_if_empty(db: Database) -> bool:
    """Load the demo clinics (next 14 days, Asia/Shanghai) unless any department exists; True if loaded."""
    async with db.sessions() as session:
        if await session.scalar(select(func.count()).select_from(Department)):
            return False
        await load_demo_data(session, hospital_today(utcnow()))
        await session.commit()
        return True


async def _main() -> None:
    db = Database(get_settings().database_url)
    try:
        loaded = await load_demo_data_if_empty(db)
    finally:
        await db.dispose()
    print("demo schedules loaded" if loaded else "departments exist: demo schedules not loaded")


if __name__ == "__main__":
    asyncio.run(_main())
