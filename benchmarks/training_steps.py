"""N optimizer steps of the book's configuration, set up as one row of the benchmark does:
the child process of ``benchmarks/pretraining_speed.py --steps N``.

    python benchmarks/training_steps.py ROW STEPS      (ROW: book, faithful, fast, fast-T)

The 124M model on The Verdict's training batches (2 x 256 tokens, shuffled with seed 123
as in the book), CPU. Each row builds its model and optimizer as its run does:
- book: ``GPTModel`` and ``torch.optim.AdamW``, the process as Python starts it;
- faithful: the same, after ``python -m reference``'s allocator setting (reference/allocator.py);
- fast: ``--fast``'s fused kernels and fused AdamW, threads fitted to the free CPUs;
- fast-T: the same with torch's own thread count.
Only the steps are timed (forward, loss, backward, AdamW step, as the book's loop takes
them), not building the model, the evaluation, the sample or the checkpoint. Prints one
JSON line: wall and CPU seconds of the steps, peak memory, and each step's loss (full
precision, so that equal lines mean equal bits).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROWS = ("book", "faithful", "fast", "fast-T")


def build(row: str):
    """The loader, model and optimizer of ``row``, seeded as the book seeds them."""
    import torch

    from reference.data import create_dataloader_v1, load_text
    from reference.model import GPT_CONFIG_124M, GPTModel

    if row != "book":
        from reference.allocator import keep_freed_memory

        keep_freed_memory()
    text = load_text()
    torch.manual_seed(123)
    loader = create_dataloader_v1(text[:int(0.9 * len(text))], batch_size=2, max_length=256, stride=256,
                                  drop_last=True, shuffle=True, num_workers=0)
    torch.manual_seed(123)
    model = GPTModel(GPT_CONFIG_124M)
    if row.startswith("fast"):
        from reference.fast import fast_optimizer, fit_threads, speed_up_model

        if row == "fast":
            fit_threads()
        speed_up_model(model, "cpu")
        optimizer = fast_optimizer(model, 0.0004, 0.1)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)
    return loader, model, optimizer


def batches(loader, steps: int):
    """``steps`` batches, epoch after epoch (9 an epoch)."""
    while True:
        for batch in loader:
            if steps == 0:
                return
            steps -= 1
            yield batch


def main(argv=None) -> int:
    import torch

    row, steps = (argv if argv is not None else sys.argv[1:])[:2]
    if row not in ROWS:
        raise SystemExit(f"training_steps.py: ROW must be one of {', '.join(ROWS)}, not {row!r}")
    loader, model, optimizer = build(row)
    model.train()
    lines = []
    wall, cpu = time.perf_counter(), time.process_time()
    for step, (input_batch, target_batch) in enumerate(batches(loader, int(steps))):
        optimizer.zero_grad()
        logits = model(input_batch)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())
        loss.backward()
        optimizer.step()
        lines.append(f"Ep 1 (Step {step:06d}): Train loss {loss.item()!r}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mib": peak_mib, "rc": 0, "threads": torch.get_num_threads(),
                      "stdout": "\n".join(lines) + "\n"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
