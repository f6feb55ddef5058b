"""``baton bench`` runs end to end and reports the figures it promises."""

from __future__ import annotations

import json

import pytest
from conftest import baton

pytestmark = pytest.mark.slow
KEYS = {"tasks", "makespan_s", "tasks_per_s", "dispatch_p50_ms", "dispatch_p99_ms", "startup_s",
        "controller_peak_rss_mb", "worker_peak_rss_mb", "state", "backend"}  # fmt: skip


@pytest.mark.parametrize("variant", ["noop", "sleep"])
def test_bench_prints_one_json_object_per_run(store_url: str, variant: str) -> None:
    result = baton("bench", "--partitions", "5", "--variant", variant, "--repeat", "2", "--workers", "1",
                   "--slots", "2", "--json", "--db", store_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(runs) == 2
    for run in runs:
        assert run.keys() >= KEYS
        assert run["tasks"] == 6 * 5 + 2 and run["state"] == "succeeded"
        assert run["backend"] == store_url.split(":", 1)[0].removesuffix("ql")  # sqlite, postgres
        assert run["tasks_per_s"] > 0 and run["dispatch_p99_ms"] >= run["dispatch_p50_ms"] >= 0
        assert len(run["worker_peak_rss_mb"]) == 1 and run["worker_peak_rss_mb"][0] > 0
        if variant == "sleep":
            assert 0 < run["parallel_efficiency"] <= 1.0
            assert run["makespan_s"] >= run["ideal_s"]


@pytest.mark.long(seconds=20)
def test_bench_remote_runs_the_event_through_a_server_and_counts_its_requests(store_url: str) -> None:
    """``--remote``: a server on loopback and workers holding its URL and a token. The figures
    add the server's count of /worker/v1 requests per task, by route, and the claims' round
    trips as the workers timed them."""
    result = baton("bench", "--partitions", "20", "--remote", "--workers", "2", "--slots", "2", "--json",
                   "--db", store_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert run.keys() >= KEYS and run["link"] == "remote" and run["state"] == "succeeded"
    assert run["rtt_ms"] == 0 and "proxy_cpu_s" not in run  # no delay proxy without --rtt-ms
    tasks = 6 * 20 + 2
    assert run["tasks"] == tasks
    claims = run["http_requests"]["claim"]
    assert 0 < claims <= sum(run["http_requests"].values())
    assert run["http_requests_per_task"] == round(sum(run["http_requests"].values()) / tasks, 3)
    assert run["claim_requests"] >= claims  # the workers' own count includes start-up and the end
    assert 0 < run["claim_p50_ms"] <= run["claim_p99_ms"]
    assert run["server_peak_rss_mb"] > 0 and len(run["worker_peak_rss_mb"]) == 2


def test_bench_remote_with_rtt_puts_a_delay_proxy_between_workers_and_server() -> None:
    """``--rtt-ms R``: every claim's round trip passes the proxy twice, so takes at least 2R."""
    result = baton("bench", "--partitions", "20", "--remote", "--rtt-ms", "2", "--workers", "2", "--slots", "2",
                   "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert run["link"] == "remote" and run["state"] == "succeeded" and run["rtt_ms"] == 2.0
    assert run["claim_p50_ms"] >= 4.0
    assert run["proxy_cpu_s"] >= 0 and run["proxy_late_p99_ms"] >= run["proxy_late_p50_ms"] >= 0


def test_bench_rtt_without_remote_is_a_usage_error() -> None:
    result = baton("bench", "--partitions", "2", "--rtt-ms", "5")
    assert result.returncode == 2
    assert "--rtt-ms" in result.stderr and "--remote" in result.stderr
    assert result.stdout == ""
