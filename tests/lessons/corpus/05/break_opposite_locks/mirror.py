# expect: full
# why: the mirror schedule: thread 1 takes its lock, thread 0 takes the other, each waits for the other
DEADLOCK_SCHEDULE = "1x2 0x2"
