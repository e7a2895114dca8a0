"""Data: text and vocabulary (:mod:`~tme_lib.data.text`), IMDB and the generated corpus
(:mod:`~tme_lib.data.imdb`, :mod:`~tme_lib.data.toy`, chosen in
:mod:`~tme_lib.data.corpus`), batching, word vectors and downloads."""
