"""How long `awesomme audit verify` takes on a journal of N events (default 100,000), against reading the rows alone.

    .venv/bin/python benchmarks/audit_verify.py [--events 100000]

Builds the journal with the platform's own writer in a temporary SQLite database, then times the chain check and,
as the baseline in the same run, a plain read of every row.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.core.config import Settings
from awesomme.core.db import engine_for, migrate
from awesomme.models import AuditEvent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    events = parser.parse_args().events
    with tempfile.TemporaryDirectory() as scratch:
        url = Settings(var_dir=Path(scratch)).db_url
        migrate(url)
        engine = engine_for(url)
        started = time.perf_counter()
        with Session(engine) as session:
            for number in range(events):
                audit.record(session, "inference", target=f"1.2.826.0.{number}", params={"model": "m"}, actor="bench")
                if number % 5000 == 4999:
                    session.commit()
            session.commit()
        write_s = time.perf_counter() - started
        with Session(engine) as session:
            started = time.perf_counter()
            table = AuditEvent.__table__
            rows = sum(1 for _ in session.execute(select(table).execution_options(yield_per=5000)))
            read_s = time.perf_counter() - started
        with Session(engine) as session:
            started = time.perf_counter()
            verdict = audit.verify(session)
            verify_s = time.perf_counter() - started
    assert verdict.ok and verdict.events == rows == events
    print(f"events: {events}  append: {write_s:.1f} s ({events / write_s:.0f}/s)")
    print(
        f"read every row (baseline): {read_s:.2f} s   verify: {verify_s:.2f} s   "
        f"ratio verify/read: {verify_s / read_s:.2f}"
    )


if __name__ == "__main__":
    main()
