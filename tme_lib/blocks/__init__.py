"""Building blocks shared by the chapters: frozen embeddings and masked pooling
(:mod:`~tme_lib.blocks.embedding`), attention (:mod:`~tme_lib.blocks.attention`) and the
residual self-attention layer (:mod:`~tme_lib.blocks.layers`)."""
