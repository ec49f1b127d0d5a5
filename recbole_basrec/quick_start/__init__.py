from recbole_basrec.quick_start.quick_start import (
    Pipeline,
    build,
    build_config,
    load_data_and_model,
    run_recbole_basrec,
)
