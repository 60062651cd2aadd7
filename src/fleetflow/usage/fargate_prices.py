"""Fargate prices shipped with fleetflow: On-Demand Linux/x86 and Linux/ARM, per vCPU-second and
per GB-second, per region, with their date, their source and the billing rule (per second, one-
minute minimum for Linux). Data only; :mod:`.pricing` reads it. A Python module rather than a
JSON file so that it ships in every install without packaging configuration.

Override or extend it with ``FLEETFLOW_USAGE_PRICES_FILE``: a JSON file of the same shape whose
``regions`` replace these (and whose ``date``/``source``/``billing``/``spot``, when present, too).
"""

PRICES = {'date': '2026-12-01',
 'currency': 'USD',
 'source': ['https://aws.amazon.com/fargate/pricing/ (On-Demand, Linux/X86 and Linux/ARM, per vCPU and per '
            'GB; the US East (N. Virginia) example there states CPU at $0.000011244 per vCPU second)',
            'Hourly figures as published for these regions: Linux/x86 $0.04048 per vCPU-hour and $0.004445 '
            'per GB-hour, Linux/ARM $0.03238 and $0.00356; per second = per hour / 3600'],
 'note': 'Only regions whose prices were checked are listed; add others (or newer prices) with '
         'FLEETFLOW_USAGE_PRICES_FILE, a JSON file of the same shape whose regions replace these.',
 'billing': {'granularity_seconds': 1,
             'minimum_seconds': 60,
             'rule': 'Fargate bills requested vCPU and memory from the start of the image download until the '
                     'task terminates, rounded up to the nearest second, with a one-minute minimum for Linux '
                     'tasks.',
             'source': 'https://aws.amazon.com/fargate/pricing/ ("rounded up to the nearest second"; '
                       'one-minute minimum for Linux, e.g. https://www.vantage.sh/blog/fargate-pricing)'},
 'spot': {'default_discount': 0.7,
          'source': 'https://aws.amazon.com/fargate/pricing/ (Fargate Spot: "up to a 70% discount off the '
                    'regular Fargate price"; the real discount varies, set FLEETFLOW_FARGATE_SPOT_DISCOUNT)'},
 'regions': {'us-east-1': {'x86_64': {'vcpu_second': 1.1244e-05, 'gb_second': 1.2347e-06},
                           'arm64': {'vcpu_second': 8.9944e-06, 'gb_second': 9.889e-07}},
             'us-east-2': {'x86_64': {'vcpu_second': 1.1244e-05, 'gb_second': 1.2347e-06},
                           'arm64': {'vcpu_second': 8.9944e-06, 'gb_second': 9.889e-07}},
             'us-west-2': {'x86_64': {'vcpu_second': 1.1244e-05, 'gb_second': 1.2347e-06},
                           'arm64': {'vcpu_second': 8.9944e-06, 'gb_second': 9.889e-07}},
             'eu-west-1': {'x86_64': {'vcpu_second': 1.1244e-05, 'gb_second': 1.2347e-06},
                           'arm64': {'vcpu_second': 8.9944e-06, 'gb_second': 9.889e-07}}}}
