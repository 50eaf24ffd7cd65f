# expect: full
# why: classify_workload computes its ratios with speedup() itself, which checks each time by name
# cell: speedup
def speedup(serial_s, parallel_s):
    """How many times faster the parallel run was than the serial one."""
    for name, seconds in (("serial_s", serial_s), ("parallel_s", parallel_s)):
        if not seconds > 0:
            raise ValueError(f"{name} must be greater than 0, got {seconds!r}")
    return serial_s / parallel_s
# cell: classify_workload
def classify_workload(serial_s, threads_s, processes_s):
    """'io-bound', 'cpu-bound' or 'neither', from the speed-ups of threads and processes."""
    if speedup(serial_s, threads_s) >= 1.5:
        return "io-bound"
    if speedup(serial_s, processes_s) >= 1.5:
        return "cpu-bound"
    return "neither"
