"""Write the student bundle (``make student``): see :mod:`tme_lib.student`.

python tools/make_student.py [--out student] [--update | --reset]
"""

from tme_lib.student import main

if __name__ == "__main__":
    raise SystemExit(main())
