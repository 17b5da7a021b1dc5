"`eac-fastai convert …`: a dataset's official files into the noisy-label CSV."
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional
import typer
from ..errors import UserError
from .common import FaceMarginOpt, FaceSizeOpt, OutputOpt, OverwriteOpt, app, console, user_errors

convert_app = typer.Typer(no_args_is_help=True, help="Convert a dataset's official files into the noisy-label CSV.")
app.add_typer(convert_app, name='convert')

def _print_summary(df, output:Path):
    "What a conversion wrote: rows per split, classes, skipped rows, and where."
    from ..data.convert import conversion_summary
    console.print(f"{conversion_summary(df)} → {output}", highlight=False)

@convert_app.command('rafdb')
@user_errors
def convert_rafdb(raf_basic: Annotated[Path, typer.Argument(help="the raf-basic folder (EmoLabel/, Image/aligned/)")],
                  output: OutputOpt,
                  noise: Annotated[Optional[Path], typer.Option(help="EAC noise file (noise01.txt, noise02.txt, "
                                                                     "noise03.txt) for the train labels")] = None,
                  check_images: Annotated[bool, typer.Option(help="require every aligned image to exist")] = True,
                  overwrite: OverwriteOpt = False):
    "Convert RAF-DB basic (+ an EAC noise file) into the noisy-label CSV."
    from ..data.convert import convert_rafdb as convert
    df = convert(raf_basic, output, noise, check_images, overwrite)
    train = df[df.split == 'train']
    console.print(f"{len(train)} train ({(train.label != train.clean_label).mean():.2%} noisy) + "
                  f"{(df.split == 'test').sum()} test rows → {output}", highlight=False)

class FerplusMode(str, Enum):
    majority = 'majority'
    argmax = 'argmax'

ImagesOpt = Annotated[Optional[str], typer.Option(help="images folder, relative to the CSV's folder "
                                                       "(default: the CSV's name without .csv)")]
WorkersOpt = Annotated[int, typer.Option('--workers', help="threads that decode and write images (0: none)")]
ReplaceOpt = Annotated[bool, typer.Option(help="replace an existing CSV and its whole images folder")]

@convert_app.command('ferplus')
@user_errors
def convert_ferplus(fer2013: Annotated[Path, typer.Argument(help="fer2013.csv (emotion, pixels, Usage)")],
                    fer2013new: Annotated[Path, typer.Argument(help="FERPlus fer2013new.csv "
                                                                   "(Usage, Image name, 10 vote columns)")],
                    output: OutputOpt,
                    mode: Annotated[FerplusMode, typer.Option(help="majority: more than half the votes (Microsoft); "
                                                                  "argmax: most votes, "
                                                                  "ties dropped (SCN)")] = FerplusMode.majority,
                    classes: Annotated[int, typer.Option(help="7 (contempt dropped) or 8")] = 7,
                    images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    "Convert FERPlus (fer2013.csv pixels + fer2013new.csv votes) into the noisy-label CSV and 48×48 PNGs."
    from ..data.convert import convert_ferplus as convert
    df = convert(fer2013, fer2013new, output, mode.value, classes, images, workers, overwrite)
    _print_summary(df, output)

@convert_app.command('affectnet')
@user_errors
def convert_affectnet(training: Annotated[Path, typer.Argument(help="AffectNet training.csv "
                                                                     "(Manually_Annotated_file_lists)")],
                      validation: Annotated[Path, typer.Argument(help="AffectNet validation.csv; "
                                                                       "becomes the test split")],
                      images_root: Annotated[Path, typer.Argument(help="the Manually_Annotated_Images folder")],
                      output: OutputOpt,
                      classes: Annotated[int, typer.Option(help="7 (contempt dropped) or 8")] = 7,
                      size: Annotated[Optional[int], typer.Option(help="resize the face crops to SIZE×SIZE "
                                                                       "(default: keep the crop size)")] = None,
                      ext: Annotated[str, typer.Option(help=".jpg or .png for the crops")] = '.jpg',
                      images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    ("Convert AffectNet (manually annotated) into the noisy-label CSV and face crops; unusable rows are skipped "
     "and counted.")
    from ..data.convert import convert_affectnet as convert
    df = convert(training, validation, images_root, output, classes, size, ext, images, workers, overwrite)
    _print_summary(df, output)

@convert_app.command('cifar100')
@user_errors
def convert_cifar100(cifar_root: Annotated[Path, typer.Argument(help="the cifar-100-python folder "
                                                                      "(train, test, meta)")],
                     output: OutputOpt,
                     images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    "Convert CIFAR-100 (python version) into the noisy-label CSV and 32×32 PNGs."
    from ..data.convert import convert_cifar100 as convert
    df = convert(cifar_root, output, images, workers, overwrite)
    _print_summary(df, output)

@convert_app.command('fashion-mnist')
@user_errors
def convert_fashion_mnist(root: Annotated[Optional[Path], typer.Argument(help="folder of the four IDX .gz files "
                                                                              "(default: Debian's "
                                                                              "dataset-fashion-mnist)")] = None,
                          output: OutputOpt = ...,
                          train_subset: Annotated[Optional[int], typer.Option(help="keep this many training images, "
                                                                                   "equally many per class")] = None,
                          seed: Annotated[int, typer.Option(help="seed of the training subset")] = 0,
                          images: ImagesOpt = None, workers: WorkersOpt = 8, overwrite: ReplaceOpt = False):
    ("Convert Fashion-MNIST (IDX files) into the noisy-label CSV and 28×28 PNGs; its class order is data.classes "
     "in recipes/fmnist.yaml.")
    from ..data.convert import FASHION_MNIST_DIR, convert_fashion_mnist as convert
    df = convert(root or FASHION_MNIST_DIR, output, train_subset, seed, images, workers, overwrite)
    _print_summary(df, output)

@convert_app.command('tinyimagenet')
@user_errors
def convert_tinyimagenet(
        root: Annotated[Path, typer.Argument(help="the tiny-imagenet-200 folder (wnids.txt, train/, val/)")],
        output: OutputOpt,
        check_images: Annotated[bool, typer.Option(help="require every annotated val image to exist")] = True,
        overwrite: OverwriteOpt = False):
    "Convert Tiny-ImageNet into the noisy-label CSV (images stay where they are; val becomes the test split)."
    from ..data.convert import convert_tinyimagenet as convert
    df = convert(root, output, check_images, overwrite)
    _print_summary(df, output)

@convert_app.command('imagefolder')
@user_errors
def convert_imagefolder(root: Annotated[Path, typer.Argument(help="root/<class>/<image> or "
                                                                   "root/<train|valid|val|test>/<class>/<image>")],
                        output: OutputOpt,
                        valid_pct: Annotated[float, typer.Option(help="share of each class's train images "
                                                                      "moved to valid")] = 0.,
                        seed: int = 42, overwrite: OverwriteOpt = False,
                        faces: Annotated[bool, typer.Option('--faces', help="train on aligned face crops: detect the "
                                                                            "faces (needs the faces extra)")] = False,
                        all_faces: Annotated[bool, typer.Option('--all-faces', help="with --faces: a row per face, "
                                                                                    "not the largest only")] = False,
                        face_size: FaceSizeOpt = 112, face_margin: FaceMarginOpt = 0.1,
                        images: ImagesOpt = None, workers: WorkersOpt = 0):
    ("Convert a folder-per-class image tree into the noisy-label CSV (images stay where they are; with --faces their "
     "aligned face crops are written, and images without a face listed in <CSV>_no_face.csv).")
    from ..data.convert import convert_imagefolder as convert
    if all_faces and not faces: raise UserError("--all-faces works with --faces: add it")
    df = convert(root, output, valid_pct, seed, overwrite, faces, all_faces, face_size, face_margin, images, workers)
    _print_summary(df, output)
