"""IEEE C37.118.2 synchrophasors: a sans-IO codec, the PMU client and a PMU simulator."""
