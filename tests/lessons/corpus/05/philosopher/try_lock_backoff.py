# expect: full
# why: hold the left fork, try the right without blocking; on failure put the left down and retry
#   (a failed try lets go of the left fork before the neighbour can try it, so the two cannot back off
#   in step; it lost points when a search ran the backing-off philosopher again after every sleep while
#   its neighbour never ran: explore is now fair to a thread that gives way)
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
