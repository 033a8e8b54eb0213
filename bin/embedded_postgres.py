"""Start (or reuse) the embedded PostgreSQL 16 of the ``pgserver`` wheel and print a DATABASE_URL.

Usage: python bin/embedded_postgres.py DATA_DIR DATABASE_NAME

The server keeps running after this script exits and listens on a Unix socket inside DATA_DIR
(no TCP port), so it never clashes with a system PostgreSQL.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from urllib.parse import quote


def main() -> None:
    data_dir, database = Path(sys.argv[1]).resolve(), sys.argv[2]
    warnings.simplefilter("ignore")
    import pgserver
    import psycopg

    server = pgserver.get_server(data_dir, cleanup_mode=None)
    admin_url = f"postgres://postgres@{quote(str(data_dir), safe='')}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    del server
    print(f"postgres://postgres@{quote(str(data_dir), safe='')}/{database}")


if __name__ == "__main__":
    main()
