// `gradhpo train`: ordinary training of a model on a dataset (the baseline every hypergradient
// method is measured against). The work is done by run_training (tools/train_run.h).
#include <iostream>
#include <algorithm>
#include <memory>
#include <thread>

#include <gradhpo/data/load.h>
#include <gradhpo/nn/models.h>

#include "commands.h"
#include "train_run.h"

namespace gradhpo::tools {

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainRunOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model on a dataset with SGD+momentum or Adam");
  cmd->footer(
      "Example: gradhpo train --dataset fashion-mnist --model lenet5 --epochs 5 --lr 0.05 --momentum 0.9 "
      "--weight-decay 5e-4 --threads 2\n"
      "Datasets are looked for in --data, else $GRADHPO_DATA/<name>, else (fashion-mnist) "
      "/usr/share/datasets/fashion-mnist.");

  // Data.
  cmd->add_option("--dataset", o->dataset, "Dataset")
      ->check(CLI::IsMember(data::dataset_names()))
      ->capture_default_str();
  cmd->add_option("--data", o->data_folder, "Folder with the dataset files (default: $GRADHPO_DATA)");
  cmd->add_option("--val-fraction", o->val_fraction, "Fraction of the training set held out for validation")
      ->capture_default_str();
  cmd->add_option("--train-limit", o->train_limit, "Train on the first N training records only (0: all)")
      ->capture_default_str();
  cmd->add_flag("--augment", o->augment, "Random crop (padding 4) and horizontal flip, as for CIFAR");

  // Model.
  cmd->add_option("--model", o->model, "Model")->check(CLI::IsMember(nn::model_names()))->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "mlp: hidden layer widths, e.g. 256,128")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--activation", o->activation, "mlp, lenet5: activation")
      ->check(CLI::IsMember({"relu", "tanh"}))
      ->capture_default_str();
  cmd->add_option("--widen", o->widen, "wrn16: widening factor k")->check(CLI::Range(1, 16))->capture_default_str();
  cmd->add_option("--init", o->init, "Initializer")
      ->check(CLI::IsMember({"pytorch", "kaiming", "glorot"}))
      ->capture_default_str();

  // Optimization.
  cmd->add_option("--epochs", o->epochs, "Epochs")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Batch size, in examples")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--optimizer", o->optimizer, "Optimizer")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  cmd->add_option("--lr", o->lr, "Learning rate (the schedule's initial value)")->capture_default_str();
  cmd->add_option("--schedule", o->schedule, "Learning-rate schedule")
      ->check(CLI::IsMember({"constant", "step", "multistep", "cosine"}))
      ->capture_default_str();
  cmd->add_option("--lr-step", o->lr_step_epochs, "step: period in epochs (0: a third of the run)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--lr-milestones", o->lr_milestones, "multistep: epochs where the rate is multiplied by gamma")
      ->delimiter(',');
  cmd->add_option("--lr-gamma", o->lr_gamma, "step, multistep: decay factor")->capture_default_str();
  cmd->add_option("--lr-min", o->lr_min, "cosine: final learning rate")->capture_default_str();
  cmd->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "Weight decay (L2 coefficient, PyTorch form)")
      ->capture_default_str();
  cmd->add_flag("--decay-weights-only", o->decay_weights_only, "No weight decay on biases and batch-norm parameters");

  // Run.
  cmd->add_option("--seed", o->seed, "Seed for initialization, split, batch order and augmentation (>= 0)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos ? std::string()
                                                                                         : "a seed is a whole number >= 0, got " + v;
          },
          "INT >= 0"))
      ->capture_default_str();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cmd->add_option("--threads", o->threads, "Threads (OpenMP, Eigen and OpenBLAS); 0: their defaults")
      ->check(CLI::Validator(
          [cores](std::string& v) -> std::string {
            int n = -1;
            try {
              n = std::stoi(v);
            } catch (...) {
            }
            return n >= 0 && n <= cores ? std::string()
                                        : "--threads " + v + ": this machine has " + std::to_string(cores) +
                                              " hardware threads (allowed 0.." + std::to_string(cores) + "; 0: the default)";
          },
          "0.." + std::to_string(cores)))
      ->capture_default_str();
  cmd->add_option("--eval-batch", o->eval_batch, "Batch size for evaluation")->capture_default_str();
  cmd->add_flag("!--no-progress", o->progress, "Never draw the progress bar (it is drawn only on a terminal)");

  cmd->callback([o] { run_training(*o, std::cout); });
}

}  // namespace gradhpo::tools
