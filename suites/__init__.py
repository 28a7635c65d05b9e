"""Model suites: one module per domain, each a catalog of workloads (bench.suites.base.Workload)."""
