# expect: full
# why: a one-worker ThreadPoolExecutor runs set_setting in a thread; result() waits for it
# cell: thread_sees_global
def thread_sees_global(value):
    """Run processes.set_setting(value) in a new thread; return processes.SETTING afterwards."""
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="set-setting") as pool:
        pool.submit(processes.set_setting, value).result(timeout=20)
    return processes.SETTING
