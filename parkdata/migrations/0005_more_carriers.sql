-- Carriers of GB/T 2589-2020 (综合能耗计算通则) that heavy industry meters besides the
-- first eleven: washed coal, crude oil and kerosene, the steel works' by-product gases,
-- and the energy-consuming working media (耗能工质).
INSERT INTO registry.carrier (carrier_code, name_zh, name_en) VALUES
    ('washed_coal', '洗精煤', 'Washed coal'),
    ('crude_oil', '原油', 'Crude oil'),
    ('kerosene', '煤油', 'Kerosene'),
    ('coke_oven_gas', '焦炉煤气', 'Coke-oven gas'),
    ('blast_furnace_gas', '高炉煤气', 'Blast-furnace gas'),
    ('softened_water', '软化水', 'Softened water'),
    ('deaerated_water', '除氧水', 'Deaerated water'),
    ('compressed_air', '压缩空气', 'Compressed air'),
    ('oxygen', '氧气', 'Oxygen'),
    ('nitrogen', '氮气', 'Nitrogen');
