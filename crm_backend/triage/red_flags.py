"""The red-flag screen: does a patient's message describe an emergency happening now?

The clinical content (words, combinations, advice) lives in `red_flags.yml` so clinicians can read
and review it (read by red_flag_rules.py); who is ill is who_is_ill.py (我爸, 孩子三个月). This
module knows the Chinese grammar around a finding: clauses, negation (没有胸痛, 胸不痛), time
(上个月…现在好了 is over; 昨天开始 is still now) and hypotheticals (如果发烧怎么办, 会不会…). It is
pure and fast: the rules are compiled once at import, no network, no model.

It leans to over-triage: when grammar is unclear, a mention counts.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from crm_backend.triage.red_flag_rules import Rule, RuleBook, Term, rule_book
from crm_backend.triage.who_is_ill import Patient, Relation, names_somebody, patient_at, people_in

# ── results ──────────────────────────────────────────────────────────────────────────────────────


class Status(enum.StrEnum):
    """How a mention of a finding is meant."""

    CURRENT = "current"
    RESOLVED = "resolved"  # it happened just now and has stopped (血止住了)
    NEGATED = "negated"  # 没有胸痛, 胸不痛
    PAST = "past"  # 上个月…, 以前…: long over
    HYPOTHETICAL = "hypothetical"  # 如果…, 万一…, 会不会…, a general question


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Mention(_Frozen):
    """A finding's words in the message: `start`/`end` index the original text."""

    term: str
    text: str
    start: int
    end: int
    status: Status


class RedFlag(_Frozen):
    """One rule that fired, with the mentions that made it fire."""

    rule_id: str
    name: str
    advice: str
    patient: Patient
    mentions: tuple[Mention, ...]


class RedFlagResult(_Frozen):
    """The screen's verdict on one message, stored with the rule version so staff can review it."""

    version: str
    flags: tuple[RedFlag, ...]
    patient: Patient
    set_aside: tuple[Mention, ...]  # mentions that did not count (negated, past, hypothetical)
    call_to_action: str

    @property
    def emergency(self) -> bool:
        return bool(self.flags)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(flag.rule_id for flag in self.flags)


@dataclass(frozen=True)
class ScreenContext:
    """What is already known about the patient being asked about (就诊人), if anything."""

    age_months: int | None = None
    pregnant: bool | None = None
    post_op: bool | None = None


# ── grammar ──────────────────────────────────────────────────────────────────────────────────────


_SENTENCE_END = re.compile(r"[。！？!?；;\n]+")
# Clause boundaries: punctuation, and words that turn to another statement or another time.
_CLAUSE_BREAK = re.compile(
    r"[，,：:\s~～…]+|(?=但是|可是|然而)|(?<=但是|可是|然而)"
    r"|(?=(现在|目前|后来|已经)(都|也|已经|基本)?(好|没事|正常|不[痛疼抽流喘吐烧晕闷]|恢复|缓过来))"
)

# Phrases whose 不/没/无 negate nothing, masked before looking for a negation.
_NOT_NEGATION = re.compile(
    "不小心|不知道|不知|不停|不断|不住|不了|不行|不得了|不舒服|不对劲|不太对|不对|不清|不醒|不省|没多久|没过多久|"
    "不一会|没一会|忍不住|不管|不明|不到|没想到|没注意|不能|不动|不出|不上|不过|不下|不起|不见好|没好|没办法|"
    "受不了|无力|无法|无缘无故|不久|不一样|不少|不少于|停不|止不|不理|不应|不睁|不利索|不听|不吃不喝|不哭不闹|"
    "不适|不稳|不褪|不退|没力|没劲|没反应|没有反应|没呼吸|没有呼吸|没意识|没有意识|没尿|没有尿|没眼泪|没有眼泪|"
    "没放屁|没排气|没有排气|不排气|不放屁|没了呼吸|没有脉搏|没有心跳|不胎动|没有了|不是很|不知所措|没几天|没几个|"
    # A-not-A questions ask; they do not deny.
    "会不会|是不是|有没有|要不要|能不能|可不可以|好不好|对不对|算不算|严不严重|要不要紧"
)
# 木有, 莫得, 没得 (colloquial, south-west), 冇, 唔 (Cantonese) deny too.
_NEGATOR = re.compile("没有|没|不|无|未|否认|从未|并非|木有|莫得|没得|冇|唔")
# A negation reaches back only to a word that starts a new statement.
_SCOPE_BREAK = re.compile(
    "就|却|但|又|还|而且|然后|结果|突然|后来|现在|可|只是|只|就是|而是|反而|甚至|并且|的"
)
_COORDINATION = re.compile(r"^[、和与及跟或也还]*$|^或者$|^以及$")
_AFTER_NEGATED = re.compile(r"^.{0,8}?(都|也|倒|倒是|并|从来)?(没有|没)[了过]?[啊呢吧哦的]*$")
_AFTER_RESOLVED = re.compile(
    r"^.{0,6}?(已经|现在|后来|又)?(好了|好多了|没事了|停了|停下来了|止住了|消失了|缓解了|退了|没了|"
    r"不[痛疼抽流喘吐烧]了)"
)
_NOT_RESOLVED = re.compile(r"(没有|没|不见|未|还没)(缓解|好|停|止住|消失)")
_RESOLUTION_CLAUSE = re.compile(
    r"^(但是|可是|不过)?(现在|目前|后来|已经)+(都|也|已经|基本)?(好了|没事了|没事|正常了|不[痛疼抽流喘吐烧晕]了|"
    r"恢复了|恢复得|好多了|缓过来了)|^.{0,6}?(就|马上|很快|一会儿?)(好了|没事了|缓过来了|不[痛疼喘晕]了)"
)

_PAST = re.compile(
    "上上个月|上个月|上月|去年|前年|以前|之前|从前|曾经|小时候|年前|个月前|上周|上星期|上礼拜|上次|上回|那时候|"
    "当时|很久以前|早些年|前几年|年轻时|年轻的时候|既往|有过|得过|患过|发作过|过一次|过几次|做过|犯过|岁的时候|岁时|"
    "那年|那次|医生说|诊断为|诊断是|确诊|查出"
)
_NOW_STRONG = re.compile(
    "现在|目前|今天|今早|今晚|刚才|刚刚|正在|这会儿|此刻|一直|还在|仍然|依然|越来越|开始|至今|到现在|又"
)
_NOW_WEAK = re.compile("昨天|昨晚|前天|这两天|这几天|最近|突然|刚")
# A conditional covers the rest of its sentence; a worry or "会不会" only the rest of its clause.
_IF = re.compile("如果|假如|假设|假使|万一|要是|若是|倘若|一旦|如果说|有没有可能|以防")
_IF_NOT = re.compile("如果可以|如果方便|要是可以|如果能")
# "会不会是心梗" and "担心是中风" suspect what is happening; "会不会中风" asks about the future.
_WORRY = re.compile(
    "(?:担心|害怕|怕|会不会|是不是会|可能会|以后会|将来|预防|防止|避免|能不能|可不可以|多久可以|会引起|会导致|"
    "多少度|多少天|什么情况下|哪些情况)"
    "(?!是)"
)
_WORRY_NOT = re.compile("怕光|怕冷|怕热|可怕|恐怕")
_GENERAL_AFTER = re.compile(
    r"^的?(早期)?会?(有什么|有哪些|什么|有啥子|有啥|啥子|啥)(症状|表现|征兆|前兆|先兆|信号)|^的?(早期)?(症状|表现|征兆|前兆|先兆)|"
    r"^(前兆|先兆)|^(有什么|有哪些)(早期)?(症状|表现|征兆|前兆|先兆|信号)|^(怎么|如何)(预防|避免)|"
    r"^(有什么|会有什么|的)?后遗症|^是什么[？?。]?$|^是什么意思|^的(急救|处理)方法|^的?(病人|患者|病友|家属)|^(中心|门诊|病房|科)"
)
_GENERAL_BEFORE = re.compile(
    r"(什么是|什么叫|怎么预防|如何预防|怎样预防|预防|(怎么|如何|怎样)判断(是不是|是否)?)$"
)
# A message asking to learn is about no one in particular.
_EDUCATION = re.compile("想学|学一下|学习一下|好奇|科普|培训|考试|作业|论文|扶还是不扶|该不该扶")
# These ask in general only when the message names nobody and nothing that has happened (了):
# 我爸胸口疼出冷汗，和上次有什么区别 is about now.
_GENERAL_QUESTION = re.compile(
    "想了解|了解一下|一般怎么|一般会|一般是|怎么区分|区别|注意什么|注意事项|能不能开车|能开车|"
    "急救怎么做|怎么急救|如何急救|急救方法|急救措施|怎么处理才对"
)
_DONE = re.compile("了(?!解)")


# ── the screen ───────────────────────────────────────────────────────────────────────────────────

_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _normalise(text: str) -> str:
    """Half-width letters and digits, lower case, common misspellings corrected (历害 → 厉害); the
    same length, so indexes stay valid."""
    text = text.translate(_FULL_WIDTH).lower()
    book = rule_book()
    return book.spelling.sub(lambda m: book.corrections[m[0]], text) if book.corrections else text


def _clauses(text: str) -> list[tuple[int, int, int]]:
    """(start, end, sentence number) of each clause."""
    out: list[tuple[int, int, int]] = []
    sentence_start = 0
    for number, sentence_end in enumerate([*(m.start() for m in _SENTENCE_END.finditer(text)), len(text)]):
        start = sentence_start
        for brk in _CLAUSE_BREAK.finditer(text, sentence_start, sentence_end):
            if brk.start() > start:
                out.append((start, brk.start(), number))
            start = max(start, brk.end())
        if sentence_end > start:
            out.append((start, sentence_end, number))
        end_match = _SENTENCE_END.match(text, sentence_end)
        sentence_start = end_match.end() if end_match else sentence_end
    return out


_TAIL = 16


def _mask(text: str) -> str:
    return _NOT_NEGATION.sub(lambda m: "□" * len(m[0]), text)


@dataclass
class _Hit:
    term: str
    start: int
    end: int
    status: Status


def _gap_negated(term: Term, matched: str) -> bool:
    """胸口不疼: a negation inside a `*` gap of the word that matched."""
    for pattern in term.patterns:
        full = pattern.fullmatch(matched)
        if full and any(gap and _NEGATOR.search(_mask(gap)) for gap in full.groups()):
            return True
    return False


def _negated_before(clause: str, start: int, floor: int) -> bool:
    if _NEGATOR.match(clause, start):
        return False  # the finding is itself a negative (没放屁, 不省人事): its 没/不 is its own
    window = _mask(clause[max(floor, start - 5) : start])
    breaks = list(_SCOPE_BREAK.finditer(window))
    if breaks:
        window = window[breaks[-1].end() :]
    return bool(_NEGATOR.search(window))


def _clause_hits(book: RuleBook, clause: str, offset: int) -> list[_Hit]:
    found: list[tuple[int, int, Term]] = []
    for term in book.terms:
        excepted = [m.span() for m in term.excepted.finditer(clause)] if term.excepted else []
        for match in term.finder.finditer(clause):
            if any(s <= match.start() and match.end() <= e for s, e in excepted):
                continue
            found.append((match.start(), match.end(), term))
    found.sort(key=lambda item: (item[0], -item[1]))
    hits: list[_Hit] = []
    previous_end, previous_negated = 0, False
    for start, end, term in found:
        floor = previous_end if previous_end <= start else 0
        negated = _negated_before(clause, start, floor) or _gap_negated(term, clause[start:end])
        between = clause[previous_end:start] if previous_end <= start else None
        if not negated and previous_negated and between is not None and _COORDINATION.match(between):
            negated = True
        # What follows, within reach of a trailing negation (…都没有): bounded, so a long clause stays linear.
        tail = _mask(clause[end : end + _TAIL])
        if not negated and len(clause) - end <= _TAIL and _AFTER_NEGATED.match(tail):
            negated = True
        status = Status.NEGATED if negated else Status.CURRENT
        if status is Status.CURRENT and _AFTER_RESOLVED.match(tail) and not _NOT_RESOLVED.search(tail):
            status = Status.RESOLVED
        if status is Status.CURRENT and _GENERAL_AFTER.match(clause[end : end + _TAIL]):
            status = Status.HYPOTHETICAL
        if status is Status.CURRENT and _GENERAL_BEFORE.search(clause[max(0, start - 8) : start]):
            status = Status.HYPOTHETICAL
        hits.append(_Hit(term.name, start + offset, end + offset, status))
        if end > previous_end:
            previous_end, previous_negated = end, negated
    return hits


def _hypothetical_from(clause: str) -> tuple[int | None, int | None]:
    """Where a conditional (rest of sentence) and a worry (rest of clause) start in a clause."""
    conditional = None
    for match in _IF.finditer(clause):
        if not _IF_NOT.match(clause, match.start()):
            conditional = match.start()
            break
    masked = _WORRY_NOT.sub(lambda m: "□" * len(m[0]), clause)
    worry = _WORRY.search(masked)
    return conditional, (worry.start() if worry else None)


def _all_hits(book: RuleBook, text: str) -> list[_Hit]:
    hits: list[_Hit] = []
    past = False
    conditional_sentence: int | None = None
    education = bool(_EDUCATION.search(text)) or (
        bool(_GENERAL_QUESTION.search(text)) and not names_somebody(text) and not _DONE.search(text)
    )
    education = education and not _NOW_STRONG.search(text)
    clauses = _clauses(text)
    # A past episode reaches the clauses after it only when the message says later that it is over
    # (上个月胸口闷过一次，出了一身汗，现在好了); otherwise 以前有高血压，胸口疼出冷汗 is a history, then now.
    over_later = [False] * len(clauses)
    for index in range(len(clauses) - 2, -1, -1):
        start, end, _ = clauses[index + 1]
        over_later[index] = over_later[index + 1] or bool(_RESOLUTION_CLAUSE.match(text[start:end]))
    for index, (start, end, sentence) in enumerate(clauses):
        clause = text[start:end]
        clause_hits = _clause_hits(book, clause, start)
        has_past, strong, weak = _PAST.search(clause), _NOW_STRONG.search(clause), _NOW_WEAK.search(clause)
        if has_past and not strong:
            past = True
        elif strong or weak or not over_later[index]:
            past = False
        if _RESOLUTION_CLAUSE.match(clause):
            for hit in hits:
                if hit.status is Status.CURRENT:
                    hit.status = Status.RESOLVED
        conditional, worry = _hypothetical_from(clause)
        if conditional_sentence != sentence:
            conditional_sentence = None
        if strong and conditional is None:
            conditional_sentence = None
        for hit in clause_hits:
            if hit.status not in (Status.CURRENT, Status.RESOLVED):
                continue
            local = hit.start - start
            if (
                education
                or conditional_sentence is not None
                or (conditional is not None and local >= conditional)
                or (worry is not None and local >= worry)
            ):
                hit.status = Status.HYPOTHETICAL
            elif past:
                hit.status = Status.PAST
        if conditional is not None:
            conditional_sentence = sentence
        hits.extend(clause_hits)
    return hits


def _requirement_met(
    rule: Rule, patient: Patient, present: dict[str, list[_Hit]], context: ScreenContext | None
) -> bool:
    for key, value in rule.requires.items():
        if key == "infant_max_months":
            if patient.age_months is None or patient.age_months > int(value):  # type: ignore[call-overload]
                return False
        elif key == "pregnant":
            if not ((context is not None and context.pregnant) or "pregnancy" in present):
                return False
        elif key == "post_op":
            if not ((context is not None and context.post_op) or "post_op" in present):
                return False
        elif key == "child":
            young = patient.age_months is not None and patient.age_months < 14 * 12
            if not (young or patient.relation in (Relation.CHILD, Relation.INFANT)):
                return False
    return True


def screen(text: str, *, context: ScreenContext | None = None) -> RedFlagResult:
    """Screen one patient message for red flags. Never raises on odd input; empty text flags nothing."""
    book = rule_book()
    normalised = _normalise(text or "")
    hits = _all_hits(book, normalised)
    known_age = context.age_months if context is not None else None
    people = people_in(normalised, known_age)

    def counted(hit: _Hit, resolved_counts: bool) -> bool:
        return hit.status is Status.CURRENT or (resolved_counts and hit.status is Status.RESOLVED)

    # Context words (pregnant, after an operation) still count when long ago: 上个月做的手术.
    context_terms = {"pregnancy", "post_op"}
    flags: list[RedFlag] = []
    for rule in book.rules:
        present: dict[str, list[_Hit]] = {}
        for hit in hits:
            usable = counted(hit, rule.counts_when_resolved) or (
                hit.term in context_terms and hit.status is Status.PAST
            )
            if usable:
                present.setdefault(hit.term, []).append(hit)
        explained = {hit.term for hit in hits if hit.status is not Status.NEGATED}
        if any(term in explained for term in rule.unless) and not any(
            term in present for term in rule.unless_overridden_by
        ):
            continue
        for alternative in rule.match:
            if all(term in present for term in alternative):
                used = sorted((h for term in alternative for h in present[term]), key=lambda h: h.start)
                patient = patient_at(people, used[0].start, known_age)
                if not _requirement_met(rule, patient, present, context):
                    continue
                flags.append(
                    RedFlag(
                        rule_id=rule.id,
                        name=rule.name,
                        advice=rule.advice,
                        patient=patient,
                        mentions=tuple(_mention(text, h) for h in used),
                    )
                )
                break
    return RedFlagResult(
        version=book.version,
        flags=tuple(flags),
        patient=flags[0].patient if flags else patient_at(people, 0, known_age),
        set_aside=tuple(
            _mention(text, h) for h in hits if h.status in _SET_ASIDE and h.term not in context_terms
        ),
        call_to_action=book.call_to_action,
    )


_SET_ASIDE = (Status.NEGATED, Status.PAST, Status.HYPOTHETICAL)


def _mention(text: str, hit: _Hit) -> Mention:
    return Mention(
        term=hit.term, text=text[hit.start : hit.end], start=hit.start, end=hit.end, status=hit.status
    )


rule_book()  # compile at import: the first patient message should not pay for it
