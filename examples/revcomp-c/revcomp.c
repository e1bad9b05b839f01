/*
 * Example task in C: the reverse complement of every FASTA record.
 *
 * Each record is written as its header line and its reverse-complemented
 * sequence on one line: what `seqkit seq -r -p -w 0` prints. IUPAC codes
 * are complemented, case is kept, anything else is copied as it is.
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *           -I guest-sdk/include -o revcomp.wasm examples/revcomp-c/revcomp.c
 *     wrun submit revcomp.wasm --input reads.fa -o reads.rc.fa
 */
#define WRUN_IMPLEMENTATION
#include "wrun.h"

#include <stdlib.h>

WRUN_METADATA("task", "revcomp-c", "0.1.0", "fasta", "record");

static uint8_t complement[256];
static uint8_t *sequence;
static size_t sequence_capacity;

int wrun_task_init(int argc, const char *const *argv) {
    (void)argv;
    if (argc != 0) {
        return wrun_fail(WRUN_BAD_ARGS, "revcomp-c takes no arguments");
    }
    for (int b = 0; b < 256; b++) {
        complement[b] = (uint8_t)b;
    }
    const char *from = "ACGTUMRWSYKVHDBNacgtumrwsykvhdbn";
    const char *to = "TGCAAKYWSRMBDHVNtgcaakywsrmbdhvn";
    for (size_t i = 0; from[i]; i++) {
        complement[(uint8_t)from[i]] = (uint8_t)to[i];
    }
    return WRUN_OK;
}

int wrun_task_record(const uint8_t *record, size_t len) {
    if (len == 0 || record[0] != '>') {
        return wrun_fail(WRUN_BAD_INPUT, "a FASTA record must start with '>'");
    }
    const uint8_t *newline = memchr(record, '\n', len);
    size_t header_end = newline ? (size_t)(newline - record) : len;
    size_t header_len = header_end;
    if (header_len > 0 && record[header_len - 1] == '\r') {
        header_len--;
    }
    if (len > sequence_capacity) {
        free(sequence);
        sequence = malloc(len);
        sequence_capacity = sequence ? len : 0;
        if (sequence == NULL) {
            return wrun_fail(WRUN_FAILED, "out of memory");
        }
    }
    /* Walk the sequence backwards, skipping line breaks. */
    size_t n = 0;
    for (size_t i = len; i > header_end; i--) {
        uint8_t b = record[i - 1];
        if (b != '\n' && b != '\r') {
            sequence[n++] = complement[b];
        }
    }
    wrun_emit(record, header_len);
    wrun_emit_str("\n");
    wrun_emit(sequence, n);
    wrun_emit_str("\n");
    return WRUN_OK;
}

int wrun_task_finish(void) {
    return WRUN_OK;
}
