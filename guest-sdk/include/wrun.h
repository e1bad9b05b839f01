/*
 * wrun.h: the wrun guest ABI, version 1, for C (and C++) tasks.
 *
 * A task is a core WebAssembly module built as a WASI reactor:
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *           -I guest-sdk/include -o task.wasm task.c
 *
 * (Debian: clang, lld, wasi-libc, libclang-rt-14-dev-wasm32.) The ABI is
 * described in docs/abi.md; this header implements the exports so that a
 * task only writes three functions:
 *
 *     #define WRUN_IMPLEMENTATION
 *     #include "wrun.h"
 *     WRUN_METADATA("task", "my-task", "0.1.0", "fasta", "record");
 *
 *     int wrun_task_init(int argc, const char *const *argv) { return WRUN_OK; }
 *     int wrun_task_record(const uint8_t *record, size_t len) {
 *         wrun_emit(record, len);        // output, in input order
 *         return WRUN_OK;
 *     }
 *     int wrun_task_finish(void) { return WRUN_OK; }
 *
 * Return a negative status with a message to fail: `return wrun_fail(
 * WRUN_BAD_INPUT, "not a FASTA record")`. Define WRUN_IMPLEMENTATION in
 * exactly one file.
 */
#ifndef WRUN_H
#define WRUN_H

#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (docs/abi.md, "Status codes"). */
enum {
    WRUN_OK = 0,
    WRUN_MORE = 1,
    WRUN_WAIT = 2, /* wrun_step only, after wrun_spawn: call again when the children are done */
    WRUN_FAILED = -1,
    WRUN_BAD_ARGS = -2,
    WRUN_BAD_INPUT = -3,
};

/* Host imports. The host copies the bytes before returning; a range
 * outside the guest's memory traps the task. */
__attribute__((import_module("wrun"), import_name("emit")))
void wrun_emit(const void *ptr, size_t len);
__attribute__((import_module("wrun"), import_name("log")))
void wrun_log(const void *ptr, size_t len);
__attribute__((import_module("wrun"), import_name("error")))
void wrun_error(const void *ptr, size_t len);

/* Tasks that spawn tasks (docs/abi.md, "Tasks that spawn tasks"). A C task
 * that spawns exports its own `int wrun_step(void)`: inside it,
 * wrun_spawn(WRUN_SELF_MODULE, input, len, args, args_len) asks for a child
 * (args NUL-terminated, one after the other) and returns its handle (0, 1,
 * ... since the last wait) or WRUN_BAD_ARGS; returning WRUN_WAIT has the
 * host call wrun_step again once the children are done, and during that
 * call only, the wrun_child_* functions read each one's result by handle:
 * status WRUN_OK (its output) or WRUN_FAILED (its failure's message). */
#define WRUN_SELF_MODULE 0
__attribute__((import_module("wrun"), import_name("spawn")))
int wrun_spawn(int module, const void *input, size_t input_len, const void *args,
               size_t args_len);
__attribute__((import_module("wrun"), import_name("child_status")))
int wrun_child_status(unsigned handle);
__attribute__((import_module("wrun"), import_name("child_output_len")))
int wrun_child_output_len(unsigned handle);
__attribute__((import_module("wrun"), import_name("child_output_read")))
int wrun_child_output_read(unsigned handle, void *ptr, size_t len);

/* The `wrun` custom section: kind ("task"), name, version, the formats the
 * task reads (comma-separated, e.g. "fasta"), and the unit ("record": one
 * call per record; "chunk": one call per chunk). */
#define WRUN_METADATA(kind, name, version, formats, unit)                  \
    __asm__(".section .custom_section.wrun,\"\",@\n"                       \
            ".ascii \"abi=1\\nkind=" kind "\\nname=" name "\\nversion="    \
            version "\\nformats=" formats "\\nunit=" unit "\\n\"\n"        \
            ".text\n")

/* Splitters (data plugins): define WRUN_SPLITTER before including this
 * header (and no WRUN_IMPLEMENTATION, which implements a task), then
 * define these exports yourself (docs/abi.md, "Splitters"); the
 * declarations give them their export names:
 *
 *     WRUN_METADATA("splitter", "my-format", "0.1.0", "myfmt", "record");
 *
 * wrun_reserve: a buffer of at least `len` bytes the host writes each block
 * into. wrun_split: find the records starting in the `len` bytes of that
 * block (`eof`: the last one) and return how many, or a negative status.
 * wrun_boundaries: their offsets in the block, ascending.
 * wrun_weights, optional: define it to weigh records (`--chunk-weight`):
 * `count + 1` weights, the bytes before the first start first (they belong
 * to the record open since an earlier block), then each start's record's
 * bytes in this block; a record weighs the sum of its parts. */
#ifdef WRUN_SPLITTER
__attribute__((export_name("wrun_reserve")))
uint8_t *wrun_reserve(size_t len);
__attribute__((export_name("wrun_split")))
int wrun_split(size_t len, int eof);
__attribute__((export_name("wrun_boundaries")))
const uint32_t *wrun_boundaries(void);
__attribute__((export_name("wrun_weights")))
const uint64_t *wrun_weights(void);
#endif /* WRUN_SPLITTER */

/* What the task implements. `argv` holds the job's arguments
 * (`wrun submit ... -- ARGS`); they stay valid until the first record. */
int wrun_task_init(int argc, const char *const *argv);
int wrun_task_record(const uint8_t *record, size_t len);
int wrun_task_finish(void);

/* Set the failure message and return `status`, for `return wrun_fail(...)`. */
static inline int wrun_fail(int status, const char *message) {
    wrun_error(message, strlen(message));
    return status;
}

/* Write a NUL-terminated string to the output. */
static inline void wrun_emit_str(const char *text) {
    wrun_emit(text, strlen(text));
}

/* Where the job's reference data is (`wrun submit --data NAME=PATH`):
 * read-only, one file per NAME, nothing else of the host visible. */
#define WRUN_DATA_DIR "/data/"

/* Open the data file `name` for reading ("rb"): NULL with errno set when
 * the job was granted no such file or the name is over 200 bytes. Close
 * it in the same call into the task: a snapshot keeps memory, not files. */
static inline FILE *wrun_data_open(const char *name) {
    char path[sizeof WRUN_DATA_DIR + 200];
    size_t len = strlen(name);
    if (len > 200) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    memcpy(path, WRUN_DATA_DIR, sizeof WRUN_DATA_DIR - 1);
    memcpy(path + sizeof WRUN_DATA_DIR - 1, name, len + 1);
    return fopen(path, "rb");
}

#ifdef WRUN_IMPLEMENTATION

#include <stdlib.h>

/* Arguments at most; more is a BAD_ARGS failure. */
#define WRUN_MAX_ARGS 256

/* The buffer the host writes arguments and chunks into. */
static uint8_t *wrun__buffer;
static size_t wrun__capacity;

__attribute__((export_name("wrun_reserve")))
uint8_t *wrun_reserve(size_t len) {
    if (len > wrun__capacity || wrun__buffer == NULL) {
        free(wrun__buffer);
        wrun__buffer = (uint8_t *)malloc(len ? len : 1);
        wrun__capacity = wrun__buffer ? len : 0;
    }
    return wrun__buffer; /* NULL (0): the host reports the memory limit */
}

__attribute__((export_name("wrun_init")))
int wrun_init(size_t args_len) {
    const char *argv[WRUN_MAX_ARGS];
    int argc = 0;
    size_t start = 0;
    for (size_t i = 0; i < args_len; i++) {
        if (wrun__buffer[i] != 0) {
            continue;
        }
        if (argc == WRUN_MAX_ARGS) {
            return wrun_fail(WRUN_BAD_ARGS, "too many arguments");
        }
        argv[argc++] = (const char *)wrun__buffer + start;
        start = i + 1;
    }
    return wrun_task_init(argc, argv);
}

__attribute__((export_name("wrun_record")))
int wrun_record(size_t offset, size_t len) {
    return wrun_task_record(wrun__buffer + offset, len);
}

__attribute__((export_name("wrun_finish")))
int wrun_finish(void) {
    return wrun_task_finish();
}

#endif /* WRUN_IMPLEMENTATION */

#ifdef __cplusplus
}
#endif

#endif /* WRUN_H */
