"Class orders of the facial-expression converters: RAF-DB's names, also used for FERPlus and AffectNet."
from ...errors import UserError

__all__ = ['RAFDB_CLASSES', 'FERPLUS_CLASSES', 'FERPLUS_CLASSES8', 'AFFECTNET_CLASSES', 'AFFECTNET_CLASSES8']

RAFDB_CLASSES = ('Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral')
FERPLUS_CLASSES = AFFECTNET_CLASSES = RAFDB_CLASSES                    # 7-class setting (contempt dropped)
FERPLUS_CLASSES8 = AFFECTNET_CLASSES8 = RAFDB_CLASSES + ('Contempt',)  # 8-class setting

def _fer_classes(classes:int) -> tuple:
    if classes not in (7, 8): raise UserError(f"classes={classes}: use 7 (no contempt) or 8 (with contempt)")
    return FERPLUS_CLASSES if classes == 7 else FERPLUS_CLASSES8
