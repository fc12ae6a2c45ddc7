"""course_lib: the companion package of "Recurrent Neural Networks: from scratch to IMDb sentiment".

One module per chapter topic; each chapter of the book imports what it explains from here, so the page and
the tested code cannot drift apart.

==================  ====================================================================
module              what it holds
==================  ====================================================================
``gradcheck``       centered numerical gradients and the relative error used by every check
``feedforward``     affine layer, activations, losses and a small MLP (numpy)
``optim``           SGD with momentum and Adam written out (numpy), the MLP's training loop
``rnn``             the tanh RNN: step and sequence forward/backward (BPTT), temporal softmax loss, sampling, clipping
``charlm``          a character-level language model (numpy and torch) on IMDb review text, truncated BPTT, Adam
``gradients``       gradients through time: per-step norms, clipping, initialisers, long-range tasks
``lstm``            LSTM step and sequence forward/backward (numpy), gate activations, torch.nn.LSTM conversion
``gru``             GRU (PyTorch's formulation) step and sequence forward/backward, torch.nn.GRU conversion
``regularization``  dropout masks, variational dropout and layer norm in a recurrent layer, the taggers they are
                    measured on
``imdb``            IMDb data: download (and ``download_file``), parse, cache, encode, splits
``imdb_split``      a validation split grouped by movie where the archive's URL lists say the movie
``pretrain``        a word language model on the training reviews, copied into the classifier and fine-tuned
``imdb_runs``       IMDb experiments: presets, runs, ensembles, result records, the CLI; with ``text``,
                    ``models``, ``train``, ``bow``: the sentiment chapter
``spa_eng``         English-Spanish pairs (Tatoeba): download, verification, tokens, split by English sentence
``subword``         byte-pair encoding: subword units learned from the training words, for translation
``seq2seq``         additive attention (numpy), GRU encoder-decoder with/without attention, greedy/beam search, BLEU
``attention``       scaled dot-product and multi-head self-attention, masks, positional encodings (numpy)
``transformer``     a small Transformer encoder-decoder (torch) with the recurrent models' interface
``scan``            linear recurrences by loop and by parallel scan, minGRU, linear attention as a recurrence
``diagrams``        drawings of networks for the chapters (the input/output taxonomy, unrolled networks)
``plotting``        figure helpers shared by the chapters (matplotlib)
``testing``         helpers for graded assignments (e.g. proving a reference was not called)
``checks``          the checks of the assignments' test cells (``Test``, ``reference``), with ``judging``
``*_mistakes``      wrong versions of the assignments' answers (``feedforward_``, ``rnn_``, ``lstm_``,
                    ``seq2seq_mistakes``), whose outputs name a student's likely mistake in a failed check
``check``           ``python -m course_lib.check NOTEBOOK``: a student's self-check on a fresh kernel
``grading``         parallel, sandboxed autograding of a class into the nbgrader gradebook
==================  ====================================================================

Dimension legend used throughout: N batch, T time, D input features, H hidden units, C classes.
"""

__version__ = "0.1.0"
