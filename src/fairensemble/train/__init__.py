"""Member trainers: ``stacked`` (MLP members as one tensor program), ``loop`` (any
``nn.Module``, one member after another), ``frozen`` (an image backbone's features computed
once, members are stacked heads). A trainer takes a list of ``CellData`` and returns member
probabilities. ``streams`` holds what they share without torch (the cell's inputs contract,
each member's random streams), ``common`` what they share with it.
"""

from fairensemble.train.streams import (
    CellData,
    Inputs,
    MemberStreams,
    Progress,
    TrainStats,
    augment_rng,
    bootstrap_rows,
    holdout_split,
    member_rows,
    member_streams,
    order_rng,
)

__all__ = ["CellData", "Inputs", "MemberStreams", "Progress", "TrainStats", "augment_rng",
           "bootstrap_rows", "holdout_split", "member_rows", "member_streams", "order_rng",
           "train_loop", "train_stacked"]


def __getattr__(name: str):  # the trainers import torch: only when asked for
    if name == "train_stacked":
        from fairensemble.train.stacked import train_stacked

        return train_stacked
    if name == "train_loop":
        from fairensemble.train.loop import train_loop

        return train_loop
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
