# expect: full
# xfail: verdict
# why: hold the left fork, try the right without blocking; on failure put the left down and retry
#   (known bug: the controlled searches of philosopher_all_eat and transfer_conserves_money count an unfair
#   schedule, one thread spinning ~600-2000 steps while the other never runs, as a livelock at step_limit;
#   a faster scheduler now reaches such a schedule within the time bound on most runs)
def philosopher(table, seat, meals):
    """Eat meals times, each time holding both neighbouring forks; never deadlock."""
    left, right = table.forks[seat], table.forks[(seat + 1) % len(table.forks)]
    eaten = 0
    while eaten < meals:
        with left:
            if right.acquire(blocking=False):
                try:
                    table.eat(seat)
                    eaten += 1
                finally:
                    right.release()
                continue
        time.sleep(0.0005)  # back off holding nothing
