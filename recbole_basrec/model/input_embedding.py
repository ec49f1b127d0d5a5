"""Change what a stock model's ``item_embedding`` returns for its input sequence, without
touching the model's code.

Most of RecBole's sequential models embed their input with ``self.item_embedding(item_seq)``
inside ``forward`` and score candidates with ``self.item_embedding.weight``. For those, a forward
hook on that module reaches the input representations: the generic BASRec path fuses its
augmented views there (its start-up probe checks the model is one of them), and TNoise perturbs
them there. Candidate scoring that reads the weight directly is not affected.
"""
from contextlib import contextmanager


@contextmanager
def replace_input_embedding(model, replace):
    """Within the block, every call ``model.item_embedding(ids)`` with 2-D ``ids`` returns
    ``replace(ids, output)`` instead of ``output`` (``replace`` may return ``output`` itself
    to leave a call alone). The hook is removed on exit, also on error."""

    def hook(module, inputs, output):
        ids = inputs[0]
        if ids.dim() != 2:
            return output
        return replace(ids, output)

    handle = model.item_embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()

