"""a + b mod p with a one-layer MLP as a LightningModule, watched and steered by grok-tui through its callback.

    grok-tui run examples/lightning_mod_add.py                # the monitor over it: ] [ w } { l space c q d
    python examples/lightning_mod_add.py --steps 4000         # the same fit on its own, writing runs/<time>-...

The model, data and optimizer of examples/mod_add_mlp.py, trained by a Lightning Trainer with
grok_tui.integrations.lightning.GrokTuiCallback (pip install 'grok-tui[lightning]'). Full batch: the training
loader yields the whole training set again and again (an iterable without end), so one optimizer step is one
batch and validation runs every --eval-every steps, on the held-out pairs.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterator

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from grok_tui.integrations.lightning import GrokTuiCallback


class FullBatch(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """The whole of (x, y) as one batch, over and over: full-batch training, as grokking's papers train."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.x, self.y


class ModAdd(pl.LightningModule):
    """relu(E[a] + E[b]) @ U + c, trained with AdamW; the output bias in a group without weight decay."""

    def __init__(self, p: int, width: int, lr: float, wd: float):
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Embedding(p, width)
        self.unembed = nn.Linear(width, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unembed(torch.relu(self.embed(x).sum(dim=1)))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self(x)
        loss = nn.functional.cross_entropy(out, y)
        self.log("train_loss", loss)
        self.log("train_acc", (out.argmax(-1) == y).float().mean())
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(-1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        decayed = [self.embed.weight, self.unembed.weight]
        return torch.optim.AdamW(
            [{"params": decayed, "weight_decay": hp.wd}, {"params": [self.unembed.bias], "weight_decay": 0.0}],
            lr=hp.lr,
            betas=(0.9, 0.98),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p", type=int, default=67)
    parser.add_argument("--frac", type=float, default=0.3, help="share of the pairs trained on")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--wd", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--run-dir", default=None, help="where grok-tui writes the run (default runs/<time>-...)")
    args = parser.parse_args()

    pl.seed_everything(args.seed, verbose=False)
    torch.set_num_threads(1)
    p = args.p
    pairs = torch.cartesian_prod(torch.arange(p), torch.arange(p))
    labels = (pairs[:, 0] + pairs[:, 1]) % p
    order = torch.randperm(len(pairs))
    n_train = int(args.frac * len(pairs))
    train, test = order[:n_train], order[n_train:]
    # batch_size=None: each item is a whole batch already (the training set, endlessly; the test set, once).
    train_loader = DataLoader(FullBatch(pairs[train], labels[train]), batch_size=None)
    test_loader = DataLoader([(pairs[test], labels[test])], batch_size=None)

    config = {"p": p, "frac": args.frac, "width": args.width, "seed": args.seed, "steps": args.steps}
    callback = GrokTuiCallback(period=p, config=config, run_dir=args.run_dir, log_every_n_steps=args.eval_every)
    trainer = pl.Trainer(
        max_steps=args.steps,
        val_check_interval=args.eval_every,  # batches: the training loader has no end
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,  # grok-tui checkpoints the run (c, every 30 s, at the end)
        enable_progress_bar=False,  # the monitor shows the progress; a bar would fill output.log
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        # Lightning suggests loader workers; the data are one tensor already in memory.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(ModAdd(p, args.width, args.lr, args.wd), train_loader, test_loader)
    print(f"{trainer.global_step} steps; the run is in {callback.run_dir}", flush=True)


if __name__ == "__main__":
    main()
