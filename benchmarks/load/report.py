"""Print a load run's figures as Markdown: locust's per-kind stats (CSV) and the devices' verdict (JSON).

python benchmarks/load/report.py STATS_CSV VERDICT_JSON
"""

import csv
import json
import sys


def main(stats_csv, verdict_json):
    with open(verdict_json) as f:
        verdict = json.load(f)
    with open(stats_csv) as f:
        rows = list(csv.DictReader(f))
    print("| request kind | requests | failures | req/s | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in sorted(rows, key=lambda r: (r["Name"] == "Aggregated", r["Name"])):
        name = "**all**" if row["Name"] == "Aggregated" else row["Name"]
        print(
            f"| {name} | {row['Request Count']} | {row['Failure Count']} | {float(row['Requests/s']):.1f} "
            f"| {row['50%']} | {row['95%']} | {row['99%']} |"
        )
    print(
        f"\n{verdict['devices']} devices, {verdict['requests']} requests; drifted devices: {verdict['drifted']}; "
        f"unexpected errors: {verdict['unexpected_errors']} (final check {verdict['check_seconds']} s, unmeasured)"
    )
    for name, differences in list(verdict["drift"].items())[:10]:
        print(f"- {name} drifted: {'; '.join(differences)}")
    for error in verdict["errors"][:10]:
        print(f"- error: {error}")


if __name__ == "__main__":
    main(*sys.argv[1:])
