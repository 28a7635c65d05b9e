"""Model suites: one module per domain, each a catalog of workloads (suites.base.Workload)."""
