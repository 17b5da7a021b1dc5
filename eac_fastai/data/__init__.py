"Noisy-label data: CSV reading and checks, DataLoaders, augmentation, label noise, the demo faces, dataset converters."
