# expect: full
# why: the mirror schedule: consumer 1 waits first, consumer 0 takes the item, consumer 1 pops from the empty list
EMPTY_GET_SCHEDULE = "1x3 0 2x3 1 0"
