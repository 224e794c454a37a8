"""What the coordinate check records beside its numbers: its experiment's description."""
ASKS = (
    "**Lab 30, the coordinate check** (microsoft/mup's get_coord_data). Does each layer's typical "
    "coordinate size l1 = mean |x| stay put as the MLP widens, over the first steps of training? One run per "
    "command: coord.csv (mup's columns width, module, t, l1, plus param, optimizer, lr, seed), coord.png "
    "(a panel per t, log2 l1 against log2 width, SP and muP side by side), coord.json and the slopes "
    "`slope_<param>_<module>` (seed mean) and `slope_sd_<param>_<module>` with step = t, against what "
    "theory predicts (`claims_held` of `claims`).")


def note(group, child: bool, artifacts=None) -> str:
    return ""
