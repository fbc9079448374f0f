"""Check an exercise's answer without seeing it: answers are stored as salted hashes.

    python lessons/run.py 05 --check              # list the lesson's checkable answers
    python lessons/run.py 05 --check 4=0.0455     # check one (or several: 4=... 3b=...)
    python lessons/check.py 05 4=0.0455           # the same, without the lesson runner

Each checkable answer is a number (rounded to the significant digits the question names), a
whole number (exact) or a short word. ``lessons/answers.json`` holds, for each lesson and exercise, the question and the
SHA-256 of the normalised answer with its key (``05.4``) as salt, never the answer itself.
A number is accepted when it rounds to the stored value or to one unit of the last digit on
either side, so a correct answer that falls on a rounding boundary is not rejected.
Exit status: 0 when every answer given is correct, 1 otherwise.
tests/test_lesson_answers.py computes every stored answer from the framework and checks it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
ANSWERS_PATH = LESSONS_DIR / "answers.json"


@dataclass(frozen=True)
class Question:
    key: str        # "05.4": lesson and exercise (a letter for a second question, "05.4b")
    question: str   # what to give, including its precision
    kind: str       # "number", "integer" or "word"
    digits: int     # significant digits of a number (unused for words)
    sha256: str


def digest(key: str, normalised: str) -> str:
    return hashlib.sha256(f"minitransformer lessons {key}: {normalised}".encode()).hexdigest()


def normalise_number(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` significant digits, in one canonical spelling."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return f"{value:.{digits - 1}e}"


def normalise_word(text: str) -> str:
    return " ".join(text.strip().lower().replace("`", "").split())


def _neighbours(value: float, digits: int) -> list[str]:
    """The rounded value and the values one unit of its last digit below and above."""
    if value == 0 or not math.isfinite(value):
        return [normalise_number(value, digits)]
    unit = 10.0 ** (math.floor(math.log10(abs(float(normalise_number(value, digits))))) - digits + 1)
    return [normalise_number(value + step * unit, digits) for step in (0, -1, 1)]


def load_questions(path: Path = ANSWERS_PATH) -> dict[str, Question]:
    """Every checkable answer, keyed like ``05.4``."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    return {key: Question(key=key, **fields) for key, fields in entries.items() if not key.startswith("_")}


def is_correct(question: Question, answer: str) -> bool:
    """Whether ``answer`` (as the reader typed it) matches the stored hash."""
    if question.kind == "word":
        return digest(question.key, normalise_word(answer)) == question.sha256
    try:
        value = float(answer)
    except ValueError:
        return False
    if question.kind == "integer":
        return value == round(value) and digest(question.key, str(int(round(value)))) == question.sha256
    return any(digest(question.key, spelled) == question.sha256 for spelled in _neighbours(value, question.digits))


def lesson_questions(lesson: str, questions: dict[str, Question] | None = None) -> list[Question]:
    questions = load_questions() if questions is None else questions
    return [q for key, q in sorted(questions.items()) if key.split(".")[0] == lesson]


def run_checks(lesson: str, answers: list[str], out=None) -> int:
    """List the lesson's checkable answers (no ``answers``) or check ``EXERCISE=VALUE`` pairs."""
    out = sys.stdout if out is None else out
    questions = {q.key: q for q in lesson_questions(lesson)}
    if not questions:
        print(f"check: lesson {lesson} has no checkable answers", file=out)
        return 1
    if not answers:
        print(f"lesson {lesson}: give an answer as EXERCISE=VALUE, e.g. "
              f"python lessons/run.py {lesson} --check {next(iter(questions)).split('.')[1]}=...", file=out)
        for key, question in questions.items():
            print(f"  {key.split('.')[1]:>4s}  {question.question}", file=out)
        return 0
    failures = 0
    for pair in answers:
        exercise, sep, value = pair.partition("=")
        key = f"{lesson}.{exercise.strip()}"
        if not sep or key not in questions:
            known = ", ".join(k.split(".")[1] for k in questions)
            print(f"check: {pair!r} is not EXERCISE=VALUE for lesson {lesson} (exercises: {known})", file=out)
            failures += 1
            continue
        if is_correct(questions[key], value):
            print(f"{key}: correct", file=out)
        else:
            print(f"{key}: not yet ({questions[key].question})", file=out)
            failures += 1
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lesson", help="lesson number, e.g. 05")
    parser.add_argument("answers", nargs="*", help="EXERCISE=VALUE pairs, e.g. 4=0.0455")
    args = parser.parse_args(argv)
    return run_checks(args.lesson[:2].zfill(2), args.answers)


if __name__ == "__main__":
    sys.exit(main())
