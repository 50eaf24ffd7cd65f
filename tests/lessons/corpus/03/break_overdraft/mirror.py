# expect: full
# why: the mirror schedule: thread 1 checks first, then thread 0 checks, and both withdraw
OVERDRAFT_SCHEDULE = "1x3 0x3 1"
