#!/usr/bin/python3
"""The same text classifier and training step as bench/train_step_bench.cc, in PyTorch.

BERT layout (token + position + segment embeddings, LayerNorm, post-LN encoder layers with GELU,
[CLS] pooler, classifier), written the way a PyTorch user would: nn.TransformerEncoderLayer with
a key-padding mask, torch.optim.AdamW, clip_grad_norm_. Run by bench/run_train_step.sh with the
same flags, threads and OMP_WAIT_POLICY as the C++ side. Prints one JSON object.
"""
import argparse
import json
import os
import time

import torch
from torch import nn


class TextClassifier(nn.Module):
    def __init__(self, vocab, positions, d_model, layers, heads, ffn, dropout=0.1, classes=2):
        super().__init__()
        self.word = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(positions, d_model)
        self.token_type = nn.Embedding(2, d_model)
        self.norm = nn.LayerNorm(d_model, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, activation="gelu",
                                           layer_norm_eps=1e-12, batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pooler = nn.Linear(d_model, d_model)
        self.classifier = nn.Linear(d_model, classes)

    def forward(self, input_ids, token_type_ids, attention_mask):
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        x = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        x = self.dropout(self.norm(x))
        x = self.encoder(x, src_key_padding_mask=attention_mask.eq(0))
        pooled = self.dropout(torch.tanh(self.pooler(x[:, 0])))
        return self.classifier(pooled)


def make_batch(batch, seq, vocab, padding):
    torch.manual_seed(0)
    input_ids = torch.randint(5, vocab, (batch, seq), dtype=torch.int64)
    lengths = torch.full((batch,), seq, dtype=torch.int64)
    if padding == "heavy":
        lengths = torch.randint(seq // 8, seq + 1, (batch,), dtype=torch.int64)
    mask = (torch.arange(seq).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.int64)
    input_ids = input_ids.masked_fill(mask.eq(0), 0)
    labels = torch.randint(0, 2, (batch,), dtype=torch.int64)
    longest = int(mask.sum(1).max())  # the C++ trainer trims all-padding columns too
    return input_ids[:, :longest], torch.zeros_like(input_ids[:, :longest]), mask[:, :longest], labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="reference", choices=["reference", "bert-base"])
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--padding", default="dense", choices=["dense", "heavy"])
    args = parser.parse_args()
    if args.model == "bert-base":
        dims = dict(vocab=30522, positions=512, d_model=768, layers=12, heads=12, ffn=3072)
        args.batch = args.batch or 8
        args.steps = args.steps or 3
    else:
        dims = dict(vocab=8000, positions=max(args.seq, 128), d_model=128, layers=2, heads=4, ffn=512)
        args.batch = args.batch or 32
        args.steps = args.steps or 20
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = TextClassifier(**dims)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    input_ids, token_type_ids, mask, labels = make_batch(args.batch, args.seq, dims["vocab"], args.padding)
    tokens = int(mask.sum())

    def step():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(input_ids, token_type_ids, mask), labels)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"model": args.model, "padding": args.padding, "batch": args.batch, "seq": args.seq,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                      "parameters": sum(p.numel() for p in model.parameters()), "real_tokens": tokens,
                      "python_ms_per_step": round(1e3 * seconds / args.steps, 3),
                      "tokens_per_s": round(tokens * args.steps / seconds, 1)}))


if __name__ == "__main__":
    main()
