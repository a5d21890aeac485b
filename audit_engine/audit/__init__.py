"""The audit and its verdicts.

run          run_audit: one image at several budgets, every try, with verdicts
verdict      the verdict, top to bottom: domain, chance levels, both attackers' rates,
             evidence both ways, sequential looks (change a verdict rule here)
reference    each prior's reference set (images of its kind, its samples), domain check
solve        the largest budget keeping a level, per image and per data set
prepare      a prior made ready ahead of time (and the app's background Preparer)
costs        seconds per UNet evaluation here, for estimates before long work
"""
