// Everything in gradhpo::nn: parameter layouts, layers, models, losses, optimizers, training.
#pragma once

#include "init.h"
#include "layers.h"
#include "layout.h"
#include "loss.h"
#include "models.h"
#include "optim.h"
#include "schedule.h"
#include "train.h"
