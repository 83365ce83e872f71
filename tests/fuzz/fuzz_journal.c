/*
 * tests/fuzz/fuzz_journal.c: libFuzzer target for the journal reader
 * (broker/journal_read.c): a segment image is scanned, its records applied
 * to a replay table and the table loaded into a fresh core.
 *
 * Every input must be scanned without reading outside it: the scan ends at
 * or before the input's end, a corruption is reported at an offset inside it,
 * a bad header is refused; whatever records pass their checksums, malformed
 * bodies included, must load into a core that passes core_check.
 *
 * Built as the libFuzzer binary fuzz_journal with -DJOBQ_FUZZ=ON and clang,
 * and always as replay_journal over tests/fuzz/corpus/journal (CTest
 * fuzz_corpus_replay_journal).
 */
#include "broker/core.h"
#include "broker/journal.h"
#include "jobq/errors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_fail(const char *what)
{
    fprintf(stderr, "fuzz_journal: %s\n", what);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    journal_replay_t *rp = journal_replay_new();
    journal_scan_t sc;
    int rc = journal_scan_buf(data, size, journal_replay_record, rp, &sc);
    if (rc != JOBQ_OK && rc != JOBQ_ECORRUPT && rc != JOBQ_EVERSION)
        s_fail("unexpected scan result");
    if (rc != JOBQ_EVERSION && sc.end > size)
        s_fail("scan ended past the input");
    if (rc == JOBQ_ECORRUPT && sc.bad_at >= size)
        s_fail("corruption reported outside the input");
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.seed = 1;
    cfg.max_jobs = 1000;
    core_t *core = core_new(&cfg);
    journal_replay_load(rp, core, 1000, 1700000000000);
    const char *why = NULL;
    if (core_check(core, &why) != 0)
        s_fail(why ? why : "core_check failed");
    core_destroy(&core);
    journal_replay_destroy(&rp);
    return 0;
}
