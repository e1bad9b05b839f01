/*
 * Test guest: a splitter plugin in C (guest-sdk/include/wrun.h with
 * WRUN_SPLITTER): every line is a record, weighing its length in bytes,
 * reported block by block as the parts of each line in the block.
 */
#define WRUN_SPLITTER
#include "wrun.h"

#include <stdlib.h>

WRUN_METADATA("splitter", "weigh-lines-c", "0.1.0", "lines", "record");

/* Starts found in one block at most; more fail the split. */
#define MAX_STARTS (1 << 20)

static uint8_t *buffer;
static size_t capacity;
static uint32_t starts[MAX_STARTS];
static uint64_t weights[MAX_STARTS + 1];
/* A record has started: bytes before the first weigh nothing. */
static int started;

uint8_t *wrun_reserve(size_t len) {
    if (len > capacity || buffer == NULL) {
        free(buffer);
        buffer = (uint8_t *)malloc(len ? len : 1);
        capacity = buffer ? len : 0;
    }
    return buffer;
}

int wrun_split(size_t len, int eof) {
    (void)eof;
    int count = 0;
    if (!started) {
        starts[count++] = 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (buffer[i] != '\n') {
            continue;
        }
        if (count == MAX_STARTS) {
            return wrun_fail(WRUN_FAILED, "more than 2^20 lines in one block");
        }
        starts[count++] = (uint32_t)(i + 1);
    }
    /* Entry 0: the bytes before the first start (the open line's). */
    size_t from = 0;
    for (int j = 0; j < count; j++) {
        weights[j] = started ? starts[j] - from : 0;
        started = 1;
        from = starts[j];
    }
    weights[count] = len - from;
    return count;
}

const uint32_t *wrun_boundaries(void) {
    return starts;
}

const uint64_t *wrun_weights(void) {
    return weights;
}
