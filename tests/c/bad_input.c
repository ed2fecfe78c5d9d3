/* Every function with a NULL run, NULL and invalid-UTF-8 strings, bad JSON,
 * unknown category/rule/status: each returns its status and a message, and
 * nothing crashes. Prints "ok" and exits 0 when every check holds. */
#include <stdio.h>
#include <string.h>

#include "simtrack.h"

static int failures = 0;

#define EXPECT(call, want)                                                                 \
    do {                                                                                   \
        simtrack_status got_ = (call);                                                     \
        if (got_ != (want)) {                                                              \
            char m_[256];                                                                  \
            simtrack_last_error(m_, sizeof m_);                                            \
            fprintf(stderr, "%s:%d: %s returned %d, want %d (%s)\n", __FILE__, __LINE__,    \
                    #call, (int)got_, (int)(want), m_);                                    \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static void expect_message(const char *needle) {
    char msg[512];
    size_t n = simtrack_last_error(msg, sizeof msg);
    if (n == 0 || strstr(msg, needle) == NULL) {
        fprintf(stderr, "last error %zu:'%s' lacks '%s'\n", n, msg, needle);
        failures++;
    }
}

int main(void) {
    const double v[1] = {1.0};
    const char *names[1] = {"x"};

    /* A NULL run everywhere. */
    EXPECT(simtrack_log(NULL, "x", 1.0, 0), SIMTRACK_STATUS_NULL_RUN);
    expect_message("NULL");
    EXPECT(simtrack_log_n(NULL, "x", 1, 1.0, 0), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_log_many(NULL, 1, names, v, 0), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_log_many_fixed(NULL, 1, "x", 1, v, 0), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_event(NULL, "e"), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_set_metadata_f64(NULL, "k", 1.0), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_set_metadata_i64(NULL, "k", 1), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_set_metadata_str(NULL, "k", "v"), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_set_metadata_bool(NULL, "k", 1), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_save(NULL, "bad_input.c", "code"), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_alert(NULL, "a", "is above", "x", 1, 1, 1), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_alert_range(NULL, "a", "is inside range", "x", 1, 1, 0, 1), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_set_folder_details(NULL, "/f", NULL, NULL, NULL), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_set_status(NULL, "completed"), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_flush(NULL, 1.0), SIMTRACK_STATUS_NULL_RUN);
    EXPECT(simtrack_finish(NULL), SIMTRACK_STATUS_OK);
    if (simtrack_abort_requested(NULL) != 0) { fprintf(stderr, "abort_requested(NULL) != 0\n"); failures++; }
    if (simtrack_run_id(NULL, NULL, 0) != 0) { fprintf(stderr, "run_id(NULL) != 0\n"); failures++; }
    EXPECT(simtrack_init(NULL, NULL, NULL, NULL, NULL, NULL), SIMTRACK_STATUS_NULL_ARGUMENT);

    /* Bad metadata never yields a handle. */
    simtrack_run *run = (simtrack_run *)&failures; /* must be overwritten with NULL */
    EXPECT(simtrack_init("bad", "{\"nx\": ", NULL, NULL, NULL, &run), SIMTRACK_STATUS_INVALID_JSON);
    if (run != NULL) { fprintf(stderr, "failed init left run_out set\n"); failures++; }
    expect_message("metadata_json");
    EXPECT(simtrack_init("bad", "[1, 2]", NULL, NULL, NULL, &run), SIMTRACK_STATUS_INVALID_JSON);
    EXPECT(simtrack_init("bad", NULL, NULL, NULL, "no-leading-slash", &run), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_init("bad\nname", NULL, NULL, NULL, NULL, &run), SIMTRACK_STATUS_INVALID_ARGUMENT);
    const char bad_utf8[] = {'r', (char)0xff, (char)0xfe, 0};
    EXPECT(simtrack_init(bad_utf8, NULL, NULL, NULL, NULL, &run), SIMTRACK_STATUS_INVALID_UTF8);

    /* A real run: bad arguments fail one call each, the run goes on. */
    EXPECT(simtrack_init(NULL, NULL, NULL, NULL, NULL, &run), SIMTRACK_STATUS_OK);
    EXPECT(simtrack_log(run, NULL, 1.0, 0), SIMTRACK_STATUS_NULL_ARGUMENT);
    EXPECT(simtrack_log(run, bad_utf8, 1.0, 0), SIMTRACK_STATUS_INVALID_UTF8);
    EXPECT(simtrack_log(run, "", 1.0, 0), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_log(run, "bad*name", 1.0, 0), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_log(run, "tab\tname", 1.0, 0), SIMTRACK_STATUS_INVALID_ARGUMENT);
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    EXPECT(simtrack_log(run, long_name, 1.0, 0), SIMTRACK_STATUS_INVALID_ARGUMENT);
    static char huge_event[70 * 1024];
    memset(huge_event, 'e', sizeof huge_event - 1);
    EXPECT(simtrack_event(run, huge_event), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_alert(run, "a", "is above", "bad*metric", 1, 1, 1), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_log_many(run, 1, NULL, v, 0), SIMTRACK_STATUS_NULL_ARGUMENT);
    const char *mixed[2] = {"good", NULL};
    const double two[2] = {1.0, 2.0};
    EXPECT(simtrack_log_many(run, 2, mixed, two, 0), SIMTRACK_STATUS_NULL_ARGUMENT);
    EXPECT(simtrack_event(run, NULL), SIMTRACK_STATUS_NULL_ARGUMENT);
    EXPECT(simtrack_set_metadata_str(run, "k", NULL), SIMTRACK_STATUS_NULL_ARGUMENT);
    EXPECT(simtrack_set_metadata_f64(run, "", 1.0), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_save(run, "/nonexistent/file.nml", "input"), SIMTRACK_STATUS_FILE_NOT_FOUND);
    EXPECT(simtrack_save(run, "/", "input"), SIMTRACK_STATUS_FILE_NOT_FOUND);
    EXPECT(simtrack_save(run, __FILE__, "inputs"), SIMTRACK_STATUS_INVALID_CATEGORY);
    expect_message("category");
    EXPECT(simtrack_alert(run, "a", "is sideways", "x", 1, 1, 1), SIMTRACK_STATUS_INVALID_RULE);
    EXPECT(simtrack_alert(run, "a", "is inside range", "x", 1, 1, 1), SIMTRACK_STATUS_INVALID_RULE);
    EXPECT(simtrack_alert_range(run, "a", "is above", "x", 1, 1, 0, 1), SIMTRACK_STATUS_INVALID_RULE);
    EXPECT(simtrack_alert_range(run, "a", "is inside range", "x", 1, 1, 2, 1), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_alert(run, "a", "is above", "x", -1, 1, 1), SIMTRACK_STATUS_INVALID_ARGUMENT);
    EXPECT(simtrack_set_folder_details(run, "/f", "not json", NULL, NULL), SIMTRACK_STATUS_INVALID_JSON);
    EXPECT(simtrack_set_status(run, "done"), SIMTRACK_STATUS_INVALID_STATUS);
    expect_message("completed");
    EXPECT(simtrack_flush(run, -1.0), SIMTRACK_STATUS_INVALID_ARGUMENT);
    /* Defining the same alert twice is not an error. */
    EXPECT(simtrack_alert(run, "dup", "is above", "x", 1, 1, 1), SIMTRACK_STATUS_OK);
    EXPECT(simtrack_alert(run, "dup", "is above", "x", 1, 1, 1), SIMTRACK_STATUS_OK);
    EXPECT(simtrack_log(run, "x", 42.0, -1), SIMTRACK_STATUS_OK);

    /* Strings out never overrun, and report their full length. */
    char small[4];
    size_t full = simtrack_run_id(run, small, sizeof small);
    if (full != 32 || strlen(small) != 3) { fprintf(stderr, "run_id truncation: %zu '%s'\n", full, small); failures++; }
    if (strcmp(simtrack_status_str(SIMTRACK_STATUS_OK), "ok") != 0) failures++;
    if (strcmp(simtrack_status_str((simtrack_status)12345), "unknown status") != 0) failures++;

    EXPECT(simtrack_finish(run), SIMTRACK_STATUS_OK);
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    puts("ok");
    return 0;
}
