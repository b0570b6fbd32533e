// Everything in gradhpo::data: dataset readers, load_dataset, split, normalization, batches and
// augmentation.
#pragma once

#include "augment.h"
#include "batches.h"
#include "cifar10.h"
#include "dataset.h"
#include "file_bytes.h"
#include "idx.h"
#include "load.h"
#include "normalize.h"
#include "split.h"
#include "svhn.h"
