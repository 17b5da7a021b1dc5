"""Dataset converters into the noisy-label CSV (`image,label,split`, image paths relative to the CSV's folder).

RAF-DB basic (`raf-basic/`): `EmoLabel/list_patition_label.txt` holds `<name> <label 1-7>` per line for
train and test images; EAC's `noise01/02/03.txt` hold noisy labels for the train images in the same format.
Images are `Image/aligned/<stem>_aligned.jpg`. Labels 1..7 are, in order, `RAFDB_CLASSES`.

FERPlus and AffectNet labels are written with RAF-DB's class names; their class order is `FERPLUS_CLASSES` /
`AFFECTNET_CLASSES` (= `RAFDB_CLASSES`, + `Contempt` with 8 classes). A CSV stores names only, so give that order
as the recipe's `data.classes`; every converter also leaves it in `df.attrs['classes']`, and the count of rows it
dropped on purpose, by reason, in `df.attrs['skipped']`. Converters that make images (FERPlus, AffectNet, CIFAR-100,
Fashion-MNIST) fill a temporary folder next to the destination and rename it into place once everything is written;
the others (RAF-DB, Tiny-ImageNet, ImageFolder) reference the images where they are."""
from .classes import RAFDB_CLASSES, FERPLUS_CLASSES, FERPLUS_CLASSES8, AFFECTNET_CLASSES, AFFECTNET_CLASSES8
from .staging import IMAGE_EXTS, conversion_summary
from .rafdb import read_rafdb_labels, convert_rafdb
from .ferplus import FERPLUS_VOTES, ferplus_winners, convert_ferplus
from .affectnet import AFFECTNET_INDEX, convert_affectnet
from .cifar import convert_cifar100
from .fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, read_idx, convert_fashion_mnist
from .tinyimagenet import convert_tinyimagenet
from .imagefolder import convert_imagefolder

__all__ = ['RAFDB_CLASSES', 'FERPLUS_CLASSES', 'FERPLUS_CLASSES8', 'FERPLUS_VOTES', 'AFFECTNET_CLASSES',
           'AFFECTNET_CLASSES8', 'AFFECTNET_INDEX', 'IMAGE_EXTS', 'read_rafdb_labels', 'convert_rafdb',
           'ferplus_winners', 'convert_ferplus', 'convert_affectnet', 'convert_cifar100', 'FASHION_MNIST_CLASSES',
           'FASHION_MNIST_DIR', 'read_idx', 'convert_fashion_mnist', 'convert_tinyimagenet', 'convert_imagefolder',
           'conversion_summary']
