/* tests/unit/test_crc32c.c: common/crc32c against the check value and the
 * RFC 3720 (iSCSI) B.4 vectors, and chunked updates against one shot. */
#include "common/crc32c.h"
#include "jobq_test.h"

#include <string.h>

START_TEST(test_check_value_of_123456789)
{
    ck_assert_uint_eq(jobq_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(jobq_crc32c(0, "", 0), 0u);
}
END_TEST

START_TEST(test_rfc3720_vectors)
{
    unsigned char b[32];
    memset(b, 0, sizeof b);
    ck_assert_uint_eq(jobq_crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    ck_assert_uint_eq(jobq_crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    ck_assert_uint_eq(jobq_crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    ck_assert_uint_eq(jobq_crc32c(0, b, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_chunked_updates_match_one_shot)
{
    unsigned char b[1000];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (unsigned char)(i * 31 + 7);
    uint32_t whole = jobq_crc32c(0, b, sizeof b);
    for (size_t cut = 0; cut <= sizeof b; cut += 37) {
        uint32_t c = jobq_crc32c(0, b, cut);
        ck_assert_uint_eq(jobq_crc32c(c, b + cut, sizeof b - cut), whole);
    }
    /* The table version agrees at every length and alignment. */
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= 300; n += 7)
            ck_assert_uint_eq(jobq_crc32c_sw(5, b + off, n), jobq_crc32c(5, b + off, n));
    ck_assert_uint_eq(jobq_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    /* Any single flipped bit changes the value. */
    for (size_t bit = 0; bit < 8 * 64; bit += 13) {
        b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        ck_assert_uint_ne(jobq_crc32c(0, b, sizeof b), whole);
        b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("vectors");
    tcase_add_test(tc, test_check_value_of_123456789);
    tcase_add_test(tc, test_rfc3720_vectors);
    tcase_add_test(tc, test_chunked_updates_match_one_shot);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
