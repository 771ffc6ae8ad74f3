/* Reads a bin CSV and scores it with an exported model through libchromaformer:
 *   cc score.c $(pkg-config --cflags --libs chromaformer) -o score
 *   ./score genes.csv model.onnx scores.tsv                                        */
#include <chromaformer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  char err[1024];
  chromaformer_reader* reader = NULL;
  chromaformer_model* model = NULL;
  chromaformer_batch batch;
  if (argc != 4) {
    fprintf(stderr, "usage: %s INPUT.csv MODEL.onnx OUT.tsv\n", argv[0]);
    return 2;
  }
  if (chromaformer_model_open(argv[2], 0, "cpu", &model, err, sizeof err) ||
      chromaformer_reader_open(argv[1], 0, 0, NULL, &reader, err, sizeof err))
    goto fail;
  int64_t n = 0, cap = 0, done = 0;
  float* probs = NULL;
  char** ids = NULL;
  uint8_t* labels = NULL;
  while (!chromaformer_reader_next(reader, 4096, &batch, err, sizeof err) && batch.genes) {
    if (chromaformer_model_check_batch(model, argv[1], &batch, n, err, sizeof err)) goto fail;
    if (n + batch.genes > cap) { /* keep every gene's id, probability and label */
      cap = 2 * (n + batch.genes);
      probs = realloc(probs, cap * sizeof *probs);
      ids = realloc(ids, cap * sizeof *ids);
      labels = realloc(labels, cap);
    }
    if (chromaformer_model_predict(model, batch.counts, batch.genes, probs + n, err, sizeof err))
      goto fail;
    for (int64_t i = 0; i < batch.genes; ++i) { /* ids live only until the next batch */
      size_t len = strlen(batch.gene_ids[i]) + 1;
      ids[n + i] = memcpy(malloc(len), batch.gene_ids[i], len);
    }
    memcpy(labels + n, batch.labels, batch.genes);
    n += batch.genes;
  }
  if (err[0] || chromaformer_write_scores(argv[3], (const char* const*)ids, probs, labels, n,
                                          err, sizeof err))
    goto fail;
  for (; done < n; ++done) free(ids[done]);
  printf("%lld genes scored with chromaformer %s -> %s\n", (long long)n,
         chromaformer_version(), argv[3]);
  chromaformer_reader_close(reader);
  chromaformer_model_close(model);
  return 0;
fail:
  fprintf(stderr, "Error: %s\n", err);
  return 1;
}
