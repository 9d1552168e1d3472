"""Chaos runs in Jepsen's vocabulary: break a running lab on purpose while real clients
work against it, then judge whether anything acknowledged was lost or any guarantee
broken.

    workloads/   clients driving the lab's services, recording a history
                 (zk-register, zk-lock, kafka-queue, hdfs-files, yarn-jobs)
    nemesis.py   faults on a seeded schedule, each with its exact undo
    labctx.py    the acts on a lab a nemesis needs, and heal-everything
    history.py   invoke / ok / fail / info records, JSON lines
    checkers/    linearizability, lock mutual exclusion, Kafka queue, HDFS files, YARN jobs
    runner.py    run(...) -> run folder; list_runs(); report(); heal()
    report.py    report.html with latency and throughput plots, faults shaded
    fixtures.py  the chaos_run pytest fixture

    from lab.chaos import runner
    run_dir = runner.run("quickstart", "zk-register", "partition-majority", time_s=60, seed=7)
"""
