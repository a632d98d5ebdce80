"""Demo clinics for a Shenzhen general hospital, so `make run` has something to book.

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

#: code, official name, patient-facing name, aliases patients use.
DEPARTMENTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("GIM", "全科医学科", "内科（普通内科）", ("内科", "普通内科", "全科", "大内科")),
    ("CARD", "心血管内科", "心内科", ("心内科", "心脏内科", "心脏科", "心血管科")),
    ("GAST", "消化内科", "消化内科（肠胃科）", ("消化科", "肠胃科", "胃肠科", "脾胃科")),
    ("GSUR", "普通外科", "外科（普外科）", ("外科", "普外科", "普外")),
    ("PED", "儿科", "儿科", ("小儿科", "儿童科", "儿内科")),
    ("OBGYN", "妇产科", "妇产科", ("妇科", "产科", "妇科门诊")),
    ("DERM", "皮肤科", "皮肤科", ("皮肤性病科", "皮肤病科")),
    ("OPH", "眼科", "眼科", ("眼睛科",)),
    ("ENT", "耳鼻咽喉头颈外科", "耳鼻喉科", ("耳鼻喉科", "耳鼻喉", "五官科")),
    ("STOM", "口腔科", "口腔科（牙科）", ("牙科", "口腔", "看牙")),
)

#: department code → (name, title, specialty, ISO weekdays worked, half-day) per doctor; invented people.
DOCTORS: dict[str, tuple[tuple[str, str, str, tuple[int, ...], HalfDay], ...]] = {
    "GIM": (
        ("林振华", "主任医师", "发热、慢性病综合管理", (1, 3, 5), HalfDay.AM),
        ("陈雅琴", "主治医师", "常见病、多发病", (1, 2, 3, 4, 5, 6), HalfDay.PM),
        ("黄子健", "主治医师", "体检异常解读", (2, 4, 6, 7), HalfDay.AM),
    ),
    "CARD": (
        ("郑国栋", "主任医师", "冠心病、心力衰竭", (2, 4), HalfDay.AM),
        ("吴晓岚", "副主任医师", "高血压、心律失常", (1, 3, 5), HalfDay.PM),
        ("邱文博", "主治医师", "胸闷胸痛、血脂异常", (1, 2, 3, 4, 5, 6), HalfDay.AM),
    ),
    "GAST": (
        ("梁慧敏", "主任医师", "胃镜、消化道早癌", (1, 4), HalfDay.AM),
        ("许嘉豪", "副主任医师", "肝病、胰腺疾病", (2, 3, 5), HalfDay.PM),
        ("蔡静怡", "主治医师", "胃炎、肠易激综合征", (1, 2, 3, 4, 5, 6), HalfDay.AM),
    ),
    "GSUR": (
        ("罗建平", "主任医师", "甲状腺、乳腺外科", (2, 5), HalfDay.AM),
        ("何俊杰", "主治医师", "疝气、阑尾炎、体表肿物", (1, 2, 3, 4, 5), HalfDay.PM),
    ),
    "PED": (
        ("曾美玲", "主任医师", "小儿呼吸系统疾病", (1, 3, 5), HalfDay.AM),
        ("谢宇航", "副主任医师", "儿童生长发育", (2, 4, 6), HalfDay.AM),
        ("彭丽萍", "主治医师", "小儿发热、腹泻", (1, 2, 3, 4, 5, 6, 7), HalfDay.PM),
    ),
    "OBGYN": (
        ("钟淑仪", "主任医师", "高危妊娠", (1, 4), HalfDay.AM),
        ("叶晓彤", "副主任医师", "妇科炎症、月经不调", (2, 3, 5, 6), HalfDay.PM),
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
