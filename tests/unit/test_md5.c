/* tests/unit/test_md5.c: worker/md5 against RFC 1321's vectors, padding
 * boundaries and chunked updates. */
#include "jobq_test.h"
#include "worker/md5.h"

#include <stdlib.h>
#include <string.h>

/* Lowercase hex of a finished digest. */
static void
s_hex(const uint8_t d[MD5_DIGEST_LEN], char out[MD5_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < MD5_DIGEST_LEN; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[MD5_HEX_LEN] = '\0';
}

START_TEST(test_rfc1321_test_suite_vectors)
{
    static const char *const vec[][2] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
         "0",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char hex[MD5_HEX_LEN + 1];
        md5_hex(vec[i][0], strlen(vec[i][0]), hex);
        ck_assert_str_eq(hex, vec[i][1]);
    }
}
END_TEST

START_TEST(test_padding_boundaries_give_known_digests)
{
    /* Lengths around 56 and 64 bytes take one or two padding blocks. */
    static const struct {
        size_t n;
        const char *hex;
    } vec[] = {
        {55, "ef1772b6dff9a122358552954ad0df65"},  {56, "3b0c8ac703f828b04c6c197006d17218"},
        {63, "b06521f39153d618550606be297466d5"},  {64, "014842d480b571495a4a0363793f7367"},
        {65, "c743a45e0d2e6a95cb859adae0248435"},  {119, "8a7bd0732ed6a28ce75f6dabc90e1613"},
        {120, "5f61c0ccad4cac44c75ff505e1f1e537"}, {128, "e510683b3f5ffe4093d021808bc6ff70"},
    };
    char a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char hex[MD5_HEX_LEN + 1];
        md5_hex(a, vec[i].n, hex);
        ck_assert_msg(strcmp(hex, vec[i].hex) == 0, "%zu x 'a': got %s, want %s", vec[i].n, hex,
                      vec[i].hex);
    }
}
END_TEST

START_TEST(test_chunked_updates_match_one_shot)
{
    /* 1,000,000 bytes of (i * 31 + 7) mod 256; digest from md5sum. */
    size_t n = 1000000;
    unsigned char *d = malloc(n);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char)(i * 31 + 7);
    const char *want = "c9bd641122080114548d4af2a41a7e11";
    char hex[MD5_HEX_LEN + 1];
    md5_hex(d, n, hex);
    ck_assert_str_eq(hex, want);

    for (size_t chunk = 1; chunk <= 129; chunk += 16) {
        md5_t ctx;
        uint8_t dig[MD5_DIGEST_LEN];
        md5_init(&ctx);
        for (size_t off = 0; off < n; off += chunk)
            md5_update(&ctx, d + off, off + chunk <= n ? chunk : n - off);
        md5_final(&ctx, dig);
        s_hex(dig, hex);
        ck_assert_msg(strcmp(hex, want) == 0, "chunk %zu: got %s", chunk, hex);
    }
    free(d);
}
END_TEST

START_TEST(test_nul_bytes_are_hashed_and_null_empty_input_is_allowed)
{
    char hex[MD5_HEX_LEN + 1];
    md5_hex("a\0b", 3, hex);
    ck_assert_str_eq(hex, "70350f6027bce3713f6b76473084309b");
    md5_hex(NULL, 0, hex);
    ck_assert_str_eq(hex, "d41d8cd98f00b204e9800998ecf8427e");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("md5");
    TCase *tc = tcase_create("md5");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_rfc1321_test_suite_vectors);
    tcase_add_test(tc, test_padding_boundaries_give_known_digests);
    tcase_add_test(tc, test_chunked_updates_match_one_shot);
    tcase_add_test(tc, test_nul_bytes_are_hashed_and_null_empty_input_is_allowed);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
