/* ctest: the C interface on real files. argv: the package's data folder, the shipped e116
 * model, a scratch folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chromaformer.h"

static int failures = 0;
#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                    \
    }                                                                \
  } while (0)

static void write_file(const char* path, const char* text) {
  FILE* f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
}

static void test_reader(const char* data) {
  char path[4096], err[512];
  snprintf(path, sizeof path, "%s/attentivechrome_toy/classification/valid.csv", data);
  chromaformer_reader* r = NULL;
  CHECK(chromaformer_reader_open(path, 0, 0, NULL, &r, err, sizeof err) == CHROMAFORMER_OK);
  chromaformer_batch b;
  int64_t genes = 0, batches = 0;
  double sum = 0;
  while (chromaformer_reader_next(r, 7, &b, err, sizeof err) == CHROMAFORMER_OK && b.genes) {
    CHECK(b.genes <= 7 && b.bins == 100 && b.marks == 5);
    CHECK(b.labels[0] <= 1 && strlen(b.gene_ids[0]) > 0);
    for (int64_t i = 0; i < b.genes * b.bins * b.marks; ++i) sum += b.counts[i];
    genes += b.genes;
    ++batches;
  }
  CHECK(err[0] == '\0');
  CHECK(genes > 7 && batches == (genes + 6) / 7 && sum > 0);
  CHECK(chromaformer_reader_bins(r) == 100 && chromaformer_reader_marks(r) == 5);
  chromaformer_reader_close(r);
}

static void test_errors(const char* dir) {
  char path[4096], err[512];
  chromaformer_reader* r = NULL;
  chromaformer_batch b;
  snprintf(path, sizeof path, "%s/bad.csv", dir);
  write_file(path, "g1,1,0,1,2,3,4,1\ng1,2,0,1,x,3,4,1\n");
  CHECK(chromaformer_reader_open(path, 2, 0, NULL, &r, err, sizeof err) == CHROMAFORMER_OK);
  CHECK(chromaformer_reader_next(r, 10, &b, err, sizeof err) == CHROMAFORMER_ERR_FORMAT);
  CHECK(strstr(err, "bad.csv:2:") != NULL && strchr(err, '\n') == NULL);
  chromaformer_reader_close(r);
  /* a short buffer gets a cut, terminated message */
  CHECK(chromaformer_reader_open("/no/such.csv", 0, 0, NULL, &r, err, 12) == CHROMAFORMER_ERR_IO);
  CHECK(strlen(err) == 11 && r == NULL);
  CHECK(chromaformer_reader_open(NULL, 0, 0, NULL, &r, err, sizeof err) == CHROMAFORMER_ERR_ARGUMENT);
  chromaformer_reader_close(NULL);
}

static void test_scores(const char* dir) {
  char path[4096], err[512], text[256];
  const char* ids[] = {"ENSG1", "ENSG2"};
  const float p[] = {0.25f, 1.0f / 3.0f};
  const uint8_t labels[] = {0, 1};
  snprintf(path, sizeof path, "%s/scores.tsv", dir);
  CHECK(chromaformer_write_scores(path, ids, p, labels, 2, err, sizeof err) == CHROMAFORMER_OK);
  FILE* f = fopen(path, "rb");
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  CHECK(strcmp(text, "gene_id\tprobability\tlabel\nENSG1\t0.25\t0\nENSG2\t0.3333333\t1\n") == 0);
  const char* bad[] = {"ENSG1", "=cmd"};
  CHECK(chromaformer_write_scores(path, bad, p, labels, 2, err, sizeof err) == CHROMAFORMER_ERR_ARGUMENT);
  CHECK(strstr(err, "formula") != NULL);
  f = fopen(path, "rb"); /* the earlier file is untouched */
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  CHECK(n > 0 && strncmp(text, "gene_id\tprobability\tlabel\nENSG1", 31) == 0);
  CHECK(chromaformer_write_scores(dir, ids, p, labels, 2, err, sizeof err) == CHROMAFORMER_ERR_IO);
  CHECK(strstr(err, "a directory") != NULL);
}

static void test_bin_depth(void) {
  const float depth[] = {0, 1, 2, 3, 4, 10, 10, 10, 10, 10};
  float out[6];
  char err[256];
  CHECK(chromaformer_bin_depth(depth, 2, 5, 2, out, err, sizeof err) == CHROMAFORMER_OK);
  CHECK(fabsf(out[0] - logf(1.5f)) < 1e-6f && fabsf(out[2] - logf(5.0f)) < 1e-6f);
  CHECK(fabsf(out[3] - logf(11.0f)) < 1e-6f);
  CHECK(chromaformer_bin_depth(depth, 2, 5, 0, out, err, sizeof err) == CHROMAFORMER_ERR_ARGUMENT);
  const uint16_t half[] = {0x3C00, 0x4000}; /* 1.0, 2.0 */
  CHECK(chromaformer_bin_depth_f16(half, 1, 2, 2, out, err, sizeof err) == CHROMAFORMER_OK);
  CHECK(fabsf(out[0] - logf(2.5f)) < 1e-6f);
}

static void test_model(const char* data, const char* model_path, const char* dir) {
  char err[512], path[4096];
  chromaformer_model* m = NULL;
  chromaformer_status s = chromaformer_model_open(model_path, 1, "cpu", &m, err, sizeof err);
  if (s == CHROMAFORMER_ERR_UNSUPPORTED) {
    printf("model: skipped (%s)\n", err);
    return;
  }
  CHECK(s == CHROMAFORMER_OK);
  if (s != CHROMAFORMER_OK) {
    fprintf(stderr, "%s\n", err);
    return;
  }
  CHECK(chromaformer_model_bins(m) == 21 && chromaformer_model_marks(m) == 5);
  CHECK(chromaformer_model_bin_size(m) == 10000);
  CHECK(strcmp(chromaformer_model_metadata(m, "task"), "clf") == 0);
  CHECK(chromaformer_model_metadata(m, "no such key") == NULL);
  /* a 100-bin file is refused with the Python scorer's message */
  chromaformer_reader* r = NULL;
  chromaformer_batch b;
  snprintf(path, sizeof path, "%s/attentivechrome_toy/classification/valid.csv", data);
  CHECK(chromaformer_reader_open(path, 0, 0, NULL, &r, err, sizeof err) == CHROMAFORMER_OK);
  CHECK(chromaformer_reader_next(r, 16, &b, err, sizeof err) == CHROMAFORMER_OK);
  CHECK(chromaformer_model_check_batch(m, path, &b, 0, err, sizeof err) == CHROMAFORMER_ERR_MODEL);
  CHECK(strstr(err, "genes have 100 bins but e116.onnx expects 21 bins of 10000 bp") != NULL);
  chromaformer_reader_close(r);
  /* 600 genes of 21 bins: calls of 128 genes and a shorter last one, equal to gene-by-gene
   calls and to calls of 512 */
  enum { G = 600, N = G * 21 * 5 };
  float* counts = malloc(sizeof(float) * N);
  float probs[G], one[1];
  for (int i = 0; i < N; ++i) counts[i] = (float)((i * 7919) % 23);
  CHECK(chromaformer_model_predict(m, counts, G, probs, err, sizeof err) == CHROMAFORMER_OK);
  int spread = 0;
  for (int g = 0; g < G; g += 37) {
    CHECK(chromaformer_model_predict(m, counts + (size_t)g * 105, 1, one, err, sizeof err) ==
          CHROMAFORMER_OK);
    CHECK(fabsf(one[0] - probs[g]) < 1e-6f);
    spread += fabsf(probs[g] - probs[0]) > 1e-3f;
  }
  CHECK(spread > 0);
  float big[G];
  CHECK(chromaformer_model_set_batch(m, 512, err, sizeof err) == CHROMAFORMER_OK);
  CHECK(chromaformer_model_predict(m, counts, G, big, err, sizeof err) == CHROMAFORMER_OK);
  for (int g = 0; g < G; ++g) CHECK(fabsf(big[g] - probs[g]) < 1e-6f);
  CHECK(chromaformer_model_set_batch(m, 0, err, sizeof err) == CHROMAFORMER_ERR_ARGUMENT);
  for (int g = 0; g < G; ++g) CHECK(probs[g] >= 0 && probs[g] <= 1);
  free(counts);
  chromaformer_model_close(m);
  CHECK(chromaformer_model_open(path, 1, "cpu", &m, err, sizeof err) == CHROMAFORMER_ERR_MODEL);
  CHECK(strstr(err, "not a loadable ONNX model") != NULL);
  CHECK(chromaformer_model_open(model_path, 1, "tpu", &m, err, sizeof err) == CHROMAFORMER_ERR_ARGUMENT);
  (void)dir;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: test_capi DATA MODEL SCRATCH\n");
    return 2;
  }
  CHECK(strlen(chromaformer_version()) >= 5);
  test_reader(argv[1]);
  test_errors(argv[3]);
  test_scores(argv[3]);
  test_bin_depth();
  test_model(argv[1], argv[2], argv[3]);
  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("test_capi: all checks passed\n");
  return 0;
}
