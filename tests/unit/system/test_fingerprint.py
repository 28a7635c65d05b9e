

def test_machine_id_stays_with_the_machine_and_differs_between_machines():
    from bench.system.fingerprint import machine_id

    base = {"hostname": "node1", "cpu": {"model": "EPYC", "logical_cpus": 64, "governor": "performance"},
            "memory_total_mib": 515_000, "gpus": [{"name": "H100", "pci_bus_id": "0000:01:00.0", "memory_mib": 81559}],
            "packages": {"torch": "2.13.0"}}
    same = {**base, "cpu": {**base["cpu"], "governor": "powersave"}, "packages": {"torch": "2.14.0"},
            "memory_total_mib": 515_010}
    assert machine_id(base) == machine_id(same)  # a run's settings and MemTotal's drift are not the machine
    assert len(machine_id(base)) == 12
    for other in ({**base, "hostname": "node2"}, {**base, "gpus": []},
                  {**base, "gpus": [{**base["gpus"][0], "pci_bus_id": "0000:02:00.0"}]},
                  {**base, "cpu": {**base["cpu"], "logical_cpus": 32}}):
        assert machine_id(other) != machine_id(base)
    assert machine_id({}) == machine_id({"cpu": None, "gpus": None})  # old records: all None, never an error
