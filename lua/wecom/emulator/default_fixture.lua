-- The bundled default fixture (JSON; the schema is in docs/emulator.md, "Fixture").
-- Kept as a Lua module so that it installs with the rock like any other module.
return [==[
{
  "upstream": {
    "corpid": "wwUPSTREAMCORP",
    "corp_name": "华夏供应链集团有限公司",
    "qualification_status": 3,
    "apps": [
      {
        "agentid": 1000002,
        "name": "上下游协同平台",
        "secret": "ChainSystemAppSecret0000000000000000000001x",
        "system": true,
        "redirect_domain": "app.example.com",
        "callback": {
          "token": "QDG6eKsysapp",
          "aes_key": "btMKG9UAXJBPVOjdG0Ot1vhj72ETgaZQbrrFj7Z17cb"
        }
      },
      {
        "agentid": 1000003,
        "name": "区域订货助手",
        "secret": "OrdinaryAppSecret00000000000000000000000002y",
        "system": false,
        "redirect_domain": "orders.example.com",
        "visible_range": {
          "chains": [
            {
              "chain_id": "ChDISTRIB01",
              "groupids": [
                2
              ]
            },
            {
              "chain_id": "ChSUPPLIER02"
            }
          ]
        },
        "callback": {
          "token": "ordinaryTok",
          "aes_key": "hOhhFWgUZCatDRNfZvi5J8xaSBRDbTxSOehG3rjC3pn"
        }
      }
    ],
    "departments": [
      {
        "id": 1,
        "name": "华夏供应链集团",
        "parentid": 0
      },
      {
        "id": 2,
        "name": "渠道管理部",
        "parentid": 1
      },
      {
        "id": 3,
        "name": "采购部",
        "parentid": 1
      }
    ],
    "users": [
      {
        "userid": "zhangwei",
        "name": "张伟",
        "department": [
          2
        ],
        "position": "渠道经理",
        "mobile": "13800010001",
        "email": "zhangwei@huaxia.example.com"
      },
      {
        "userid": "liuyang",
        "name": "刘洋",
        "department": [
          2
        ],
        "position": "区域主管",
        "mobile": "13800010002",
        "email": "liuyang@huaxia.example.com"
      },
      {
        "userid": "chenjing",
        "name": "陈静",
        "department": [
          3
        ],
        "position": "采购专员",
        "mobile": "13800010003",
        "email": "chenjing@huaxia.example.com"
      }
    ]
  },
  "downstream": [
    {
      "corpid": "wwDOWNCORP01",
      "corp_name": "北京海淀星辰商贸有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000011,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        },
        {
          "agentid": 1000031,
          "name": "区域订货助手",
          "shared_from": 1000003,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "lina",
          "name": "李娜",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000101",
          "email": "lina@down01.example.com"
        },
        {
          "userid": "sunli",
          "name": "孙丽",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000102",
          "email": "sunli@down01.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP02",
      "corp_name": "北京朝阳恒信贸易有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000012,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        },
        {
          "agentid": 1000032,
          "name": "区域订货助手",
          "shared_from": 1000003,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "zhaolei",
          "name": "赵磊",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000201",
          "email": "zhaolei@down02.example.com"
        },
        {
          "userid": "zhouqiang",
          "name": "周强",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000202",
          "email": "zhouqiang@down02.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP03",
      "corp_name": "天津滨海宏达物流有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000013,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        },
        {
          "agentid": 1000033,
          "name": "区域订货助手",
          "shared_from": 1000003,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "sunli",
          "name": "孙丽",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000301",
          "email": "sunli@down03.example.com"
        },
        {
          "userid": "wuting",
          "name": "吴婷",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000302",
          "email": "wuting@down03.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP04",
      "corp_name": "上海浦东新纪元电子有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000014,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        },
        {
          "agentid": 1000034,
          "name": "区域订货助手",
          "shared_from": 1000003,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "zhouqiang",
          "name": "周强",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000401",
          "email": "zhouqiang@down04.example.com"
        },
        {
          "userid": "wangfang",
          "name": "王芳",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000402",
          "email": "wangfang@down04.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP05",
      "corp_name": "杭州西湖云帆科技有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000015,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "wuting",
          "name": "吴婷",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000501",
          "email": "wuting@down05.example.com"
        },
        {
          "userid": "lina",
          "name": "李娜",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000502",
          "email": "lina@down05.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP06",
      "corp_name": "南京鼓楼金陵商行",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000016,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "wangfang",
          "name": "王芳",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000601",
          "email": "wangfang@down06.example.com"
        },
        {
          "userid": "zhaolei",
          "name": "赵磊",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000602",
          "email": "zhaolei@down06.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP07",
      "corp_name": "广州天河粤海贸易有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000017,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "lina",
          "name": "李娜",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000701",
          "email": "lina@down07.example.com"
        },
        {
          "userid": "sunli",
          "name": "孙丽",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000702",
          "email": "sunli@down07.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP08",
      "corp_name": "深圳南山创联科技有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000018,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "zhaolei",
          "name": "赵磊",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000801",
          "email": "zhaolei@down08.example.com"
        },
        {
          "userid": "zhouqiang",
          "name": "周强",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000802",
          "email": "zhouqiang@down08.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP09",
      "corp_name": "成都武侯蜀锦商贸有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000019,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "sunli",
          "name": "孙丽",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900000901",
          "email": "sunli@down09.example.com"
        },
        {
          "userid": "wuting",
          "name": "吴婷",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900000902",
          "email": "wuting@down09.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP10",
      "corp_name": "武汉江汉楚天经销部",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000020,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "zhouqiang",
          "name": "周强",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900001001",
          "email": "zhouqiang@down10.example.com"
        },
        {
          "userid": "wangfang",
          "name": "王芳",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900001002",
          "email": "wangfang@down10.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP11",
      "corp_name": "西安雁塔秦川商贸有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000021,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "wuting",
          "name": "吴婷",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900001101",
          "email": "wuting@down11.example.com"
        },
        {
          "userid": "lina",
          "name": "李娜",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900001102",
          "email": "lina@down11.example.com"
        }
      ]
    },
    {
      "corpid": "wwDOWNCORP12",
      "corp_name": "苏州工业园区吴越精密制造有限公司",
      "qualification_status": 2,
      "agents": [
        {
          "agentid": 1000022,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 1,
          "confirmed": false
        }
      ],
      "users": [
        {
          "userid": "wangfang",
          "name": "王芳",
          "department": [
            1
          ],
          "position": "店长",
          "mobile": "13900001201",
          "email": "wangfang@down12.example.com"
        },
        {
          "userid": "zhaolei",
          "name": "赵磊",
          "department": [
            1
          ],
          "position": "采购",
          "mobile": "13900001202",
          "email": "zhaolei@down12.example.com"
        }
      ]
    },
    {
      "corpid": "wwGROUPCORP01",
      "corp_name": "华夏供应链(香港)有限公司",
      "qualification_status": 3,
      "agents": [
        {
          "agentid": 1000051,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 0,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "huangmin",
          "name": "黄敏",
          "department": [
            1
          ],
          "position": "总经理",
          "mobile": "13700000001",
          "email": "huangmin@group01.example.com"
        }
      ]
    },
    {
      "corpid": "wwGROUPCORP02",
      "corp_name": "华夏冷链物流有限公司",
      "qualification_status": 3,
      "agents": [
        {
          "agentid": 1000052,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 0,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "huangmin",
          "name": "黄敏",
          "department": [
            1
          ],
          "position": "总经理",
          "mobile": "13700000002",
          "email": "huangmin@group02.example.com"
        }
      ]
    },
    {
      "corpid": "wwGROUPCORP03",
      "corp_name": "华夏供应链研究院",
      "qualification_status": 3,
      "agents": [
        {
          "agentid": 1000053,
          "name": "上下游协同平台",
          "shared_from": 1000002,
          "business_type": 0,
          "confirmed": true
        }
      ],
      "users": [
        {
          "userid": "huangmin",
          "name": "黄敏",
          "department": [
            1
          ],
          "position": "总经理",
          "mobile": "13700000003",
          "email": "huangmin@group03.example.com"
        }
      ]
    }
  ],
  "chains": [
    {
      "chain_id": "ChDISTRIB01",
      "chain_name": "经销商网络",
      "creator_corpid": "wwUPSTREAMCORP",
      "groups": [
        {
          "groupid": 2,
          "group_name": "华北区",
          "parentid": 1,
          "order": 300
        },
        {
          "groupid": 3,
          "group_name": "北京市",
          "parentid": 2,
          "order": 200
        },
        {
          "groupid": 4,
          "group_name": "海淀区",
          "parentid": 3,
          "order": 100
        },
        {
          "groupid": 5,
          "group_name": "华东区",
          "parentid": 1,
          "order": 200
        },
        {
          "groupid": 6,
          "group_name": "上海市",
          "parentid": 5,
          "order": 100
        },
        {
          "groupid": 7,
          "group_name": "华南区",
          "parentid": 1,
          "order": 100
        }
      ],
      "corps": [
        {
          "corpid": "wwDOWNCORP05",
          "corp_name": "杭州西湖云帆科技有限公司",
          "groupid": 1,
          "custom_id": "D0005",
          "invite_userid": "zhangwei",
          "qualification_status": 2,
          "user_custom_ids": {
            "wuting": "880005"
          }
        },
        {
          "corpid": "wwDOWNCORP06",
          "corp_name": "南京鼓楼金陵商行",
          "groupid": 1,
          "custom_id": "D0006",
          "invite_userid": "liuyang",
          "qualification_status": 3,
          "user_custom_ids": {
            "wangfang": "880006"
          }
        },
        {
          "corpid": "wwDOWNCORP07",
          "corp_name": "广州天河粤海贸易有限公司",
          "groupid": 1,
          "custom_id": "D0007",
          "invite_userid": "zhangwei",
          "qualification_status": 2,
          "user_custom_ids": {
            "lina": "880007"
          }
        },
        {
          "corpid": "wwDOWNCORP08",
          "corp_name": "深圳南山创联科技有限公司",
          "groupid": 1,
          "custom_id": "D0008",
          "invite_userid": "liuyang",
          "qualification_status": 2,
          "user_custom_ids": {
            "zhaolei": "880008"
          }
        },
        {
          "corpid": "wwDOWNCORP09",
          "corp_name": "成都武侯蜀锦商贸有限公司",
          "groupid": 1,
          "custom_id": "D0009",
          "invite_userid": "zhangwei",
          "qualification_status": 3,
          "user_custom_ids": {
            "sunli": "880009"
          }
        },
        {
          "corpid": "wwDOWNCORP10",
          "corp_name": "武汉江汉楚天经销部",
          "groupid": 1,
          "custom_id": "D0010",
          "invite_userid": "liuyang",
          "qualification_status": 2,
          "user_custom_ids": {
            "zhouqiang": "880010"
          }
        },
        {
          "corpid": "wwDOWNCORP11",
          "corp_name": "西安雁塔秦川商贸有限公司",
          "groupid": 1,
          "custom_id": "D0011",
          "invite_userid": "zhangwei",
          "qualification_status": 2,
          "user_custom_ids": {
            "wuting": "880011"
          }
        },
        {
          "corpid": "wwDOWNCORP12",
          "corp_name": "苏州工业园区吴越精密制造有限公司",
          "groupid": 1,
          "custom_id": "D0012",
          "invite_userid": "liuyang",
          "qualification_status": 3,
          "user_custom_ids": {
            "wangfang": "880012"
          }
        },
        {
          "pending_corpid": "pd6856b7e23692dba44610fd",
          "corp_name": "石家庄裕华华强商贸",
          "groupid": 1,
          "custom_id": "P0001",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd20c17a367e3775a5116918",
          "corp_name": "保定莲池永盛批发部",
          "groupid": 1,
          "custom_id": "P0002",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd438899af0976e31500e003",
          "corp_name": "唐山路北利达商行",
          "groupid": 1,
          "custom_id": "P0003",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pda004bd409c18174b0f9d58",
          "corp_name": "太原小店晋阳贸易",
          "groupid": 1,
          "custom_id": "P0004",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd02d20890714aed7f1acab3",
          "corp_name": "济南历下泉城商贸",
          "groupid": 1,
          "custom_id": "P0005",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd14ed2730c4700d78a89ce5",
          "corp_name": "青岛市南海韵经销部",
          "groupid": 1,
          "custom_id": "P0006",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pda695f33c3b1056b57b07f4",
          "corp_name": "郑州金水中原商贸",
          "groupid": 1,
          "custom_id": "P0007",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pdac9574145c55f87facd161",
          "corp_name": "合肥蜀山徽商贸易",
          "groupid": 1,
          "custom_id": "P0008",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd7bb854a66c80bbd9882154",
          "corp_name": "福州鼓楼闽江商行",
          "groupid": 1,
          "custom_id": "P0009",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd1b9b39edab6da548c4972e",
          "corp_name": "厦门思明鹭岛贸易",
          "groupid": 1,
          "custom_id": "P0010",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd692cb25f56396c4e00007e",
          "corp_name": "长沙岳麓湘江商贸",
          "groupid": 1,
          "custom_id": "P0011",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd16035301a4d55dd61a8c2d",
          "corp_name": "南昌东湖赣江经销部",
          "groupid": 1,
          "custom_id": "P0012",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pdeb5d2afbbba4e3d65d0247",
          "corp_name": "昆明五华春城商贸",
          "groupid": 1,
          "custom_id": "P0013",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pde0fc7b24aaadd0955c3586",
          "corp_name": "贵阳云岩黔香商行",
          "groupid": 1,
          "custom_id": "P0014",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd575f7cf8578b16338e6b72",
          "corp_name": "南宁青秀绿城贸易",
          "groupid": 1,
          "custom_id": "P0015",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd61c612c6d384f955d71d59",
          "corp_name": "海口龙华椰风商贸",
          "groupid": 1,
          "custom_id": "P0016",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pddac30501986ab65411be86",
          "corp_name": "沈阳和平盛京商贸",
          "groupid": 1,
          "custom_id": "P0017",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd3969ee0129e97692f26711",
          "corp_name": "长春朝阳吉顺商行",
          "groupid": 1,
          "custom_id": "P0018",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd67b5c5498aae79ce6ea133",
          "corp_name": "哈尔滨道里冰城贸易",
          "groupid": 1,
          "custom_id": "P0019",
          "invite_userid": "liuyang"
        },
        {
          "pending_corpid": "pd9f2645d699d639bae0f940",
          "corp_name": "大连中山海湾商贸",
          "groupid": 1,
          "custom_id": "P0020",
          "invite_userid": "liuyang"
        },
        {
          "corpid": "wwDOWNCORP01",
          "corp_name": "北京海淀星辰商贸有限公司",
          "groupid": 3,
          "custom_id": "D0001",
          "invite_userid": "zhangwei",
          "qualification_status": 3,
          "user_custom_ids": {
            "lina": "880001"
          }
        },
        {
          "corpid": "wwDOWNCORP02",
          "corp_name": "北京朝阳恒信贸易有限公司",
          "groupid": 4,
          "custom_id": "D0002",
          "invite_userid": "zhangwei",
          "qualification_status": 3,
          "user_custom_ids": {
            "zhaolei": "880002"
          }
        },
        {
          "corpid": "wwDOWNCORP03",
          "corp_name": "天津滨海宏达物流有限公司",
          "groupid": 2,
          "custom_id": "D0003",
          "invite_userid": "zhangwei",
          "qualification_status": 3,
          "user_custom_ids": {
            "sunli": "880003"
          }
        },
        {
          "corpid": "wwDOWNCORP04",
          "corp_name": "上海浦东新纪元电子有限公司",
          "groupid": 6,
          "custom_id": "D0004",
          "invite_userid": "zhangwei",
          "qualification_status": 3,
          "user_custom_ids": {
            "zhouqiang": "880004"
          }
        },
        {
          "pending_corpid": "pdbj0001hd",
          "corp_name": "北京中关村新锐科技",
          "groupid": 4,
          "custom_id": "",
          "invite_userid": "zhangwei"
        },
        {
          "pending_corpid": "pdsh0002pd",
          "corp_name": "上海陆家嘴汇金商贸",
          "groupid": 6,
          "custom_id": "P0101"
        }
      ]
    },
    {
      "chain_id": "ChSUPPLIER02",
      "chain_name": "供应商协同",
      "creator_corpid": "wwUPSTREAMCORP",
      "groups": [
        {
          "groupid": 2,
          "group_name": "原材料供应商",
          "parentid": 1,
          "order": 200
        },
        {
          "groupid": 3,
          "group_name": "物流服务商",
          "parentid": 1,
          "order": 100
        }
      ],
      "corps": [
        {
          "corpid": "wwDOWNCORP03",
          "corp_name": "天津滨海宏达物流有限公司",
          "groupid": 3,
          "custom_id": "S0003",
          "invite_userid": "chenjing",
          "qualification_status": 3
        },
        {
          "corpid": "wwDOWNCORP12",
          "corp_name": "苏州工业园区吴越精密制造有限公司",
          "groupid": 2,
          "custom_id": "S0012",
          "invite_userid": "chenjing",
          "qualification_status": 2
        },
        {
          "corpid": "wwDOWNCORP08",
          "corp_name": "深圳南山创联科技有限公司",
          "groupid": 2,
          "custom_id": "S0008",
          "invite_userid": "chenjing",
          "qualification_status": 2
        },
        {
          "pending_corpid": "pdsupplier0001",
          "corp_name": "宁波北仑港通物流",
          "groupid": 3,
          "custom_id": "S0101"
        },
        {
          "pending_corpid": "pdsupplier0002",
          "corp_name": "无锡新吴精工材料",
          "groupid": 2,
          "custom_id": ""
        }
      ]
    },
    {
      "chain_id": "ChSERVICE03",
      "chain_name": "售后服务网点（合作方创建）",
      "creator_corpid": "wwPARTNERCORP",
      "groups": [
        {
          "groupid": 2,
          "group_name": "华南服务区",
          "parentid": 1,
          "order": 0
        }
      ],
      "corps": [
        {
          "corpid": "wwDOWNCORP07",
          "corp_name": "广州天河粤海贸易有限公司",
          "groupid": 2,
          "custom_id": "",
          "qualification_status": 2
        },
        {
          "corpid": "wwDOWNCORP08",
          "corp_name": "深圳南山创联科技有限公司",
          "groupid": 2,
          "custom_id": "",
          "qualification_status": 2
        }
      ]
    }
  ],
  "rules": [
    {
      "chain_id": "ChDISTRIB01",
      "rule_id": 1,
      "rule_info": {
        "owner_corp_range": {
          "departmentids": [
            2
          ],
          "userids": [
            "zhangwei"
          ]
        },
        "member_corp_range": {
          "groupids": [
            2,
            5
          ],
          "corpids": []
        }
      }
    },
    {
      "chain_id": "ChDISTRIB01",
      "rule_id": 2,
      "rule_info": {
        "owner_corp_range": {
          "departmentids": [],
          "userids": [
            "chenjing"
          ]
        },
        "member_corp_range": {
          "groupids": [],
          "corpids": [
            "wwDOWNCORP05"
          ]
        }
      }
    }
  ],
  "customers": [
    {
      "unionid": "oUnion_wx_000001",
      "openid": "oMini_000001",
      "external_userids": [
        {
          "corpid": "wwDOWNCORP01",
          "external_userid": "wmDOWN01ext000001"
        },
        {
          "corpid": "wwDOWNCORP05",
          "external_userid": "wmDOWN05ext000001"
        }
      ]
    },
    {
      "unionid": "oUnion_wx_000002",
      "openid": "oMini_000002",
      "external_userids": [
        {
          "corpid": "wwDOWNCORP02",
          "external_userid": "wmDOWN02ext000002"
        }
      ]
    },
    {
      "unionid": "oUnion_wx_000003",
      "openid": "oMini_000003",
      "external_userids": []
    }
  ],
  "linkedcorp": {
    "departments": [
      {
        "linked_id": "LK4B0C1D2E",
        "corpid": "wwLINKEDA01",
        "department_id": "1",
        "department_name": "华夏联合物流",
        "parentid": "0",
        "order": 100000
      },
      {
        "linked_id": "LK4B0C1D2E",
        "corpid": "wwLINKEDA01",
        "department_id": "2",
        "department_name": "运输调度部",
        "parentid": "1",
        "order": 90000
      },
      {
        "linked_id": "LK4B0C1D2E",
        "corpid": "wwLINKEDA01",
        "department_id": "3",
        "department_name": "华北车队",
        "parentid": "2",
        "order": 80000
      },
      {
        "linked_id": "LK9F8E7D6C",
        "corpid": "wwLINKEDB02",
        "department_id": "1",
        "department_name": "华夏金融服务",
        "parentid": "0",
        "order": 100000
      },
      {
        "linked_id": "LK9F8E7D6C",
        "corpid": "wwLINKEDB02",
        "department_id": "4",
        "department_name": "结算中心",
        "parentid": "1",
        "order": 50000
      }
    ],
    "users": [
      {
        "corpid": "wwLINKEDA01",
        "userid": "yangfan",
        "name": "杨帆",
        "department": [
          "LK4B0C1D2E/1"
        ],
        "position": "总经理",
        "mobile": "13600000001",
        "telephone": "010-88880001",
        "email": "yangfan@linked-a.example.com",
        "extattr": {
          "attrs": [
            {
              "type": 0,
              "name": "工号",
              "text": {
                "value": "A0001"
              }
            }
          ]
        }
      },
      {
        "corpid": "wwLINKEDA01",
        "userid": "xuming",
        "name": "徐明",
        "department": [
          "LK4B0C1D2E/2"
        ],
        "position": "调度主管",
        "mobile": "13600000002",
        "telephone": "",
        "email": "xuming@linked-a.example.com",
        "extattr": {
          "attrs": [
            {
              "type": 1,
              "name": "主页",
              "web": {
                "url": "https://linked-a.example.com/xuming",
                "title": "主页"
              }
            }
          ]
        }
      },
      {
        "corpid": "wwLINKEDA01",
        "userid": "hegang",
        "name": "何刚",
        "department": [
          "LK4B0C1D2E/3"
        ],
        "position": "车队长",
        "mobile": "13600000003",
        "telephone": "",
        "email": ""
      },
      {
        "corpid": "wwLINKEDA01",
        "userid": "gaojie",
        "name": "高洁",
        "department": [
          "LK4B0C1D2E/2",
          "LK4B0C1D2E/3"
        ],
        "position": "调度员",
        "mobile": "13600000004",
        "telephone": "",
        "email": "gaojie@linked-a.example.com"
      },
      {
        "corpid": "wwLINKEDB02",
        "userid": "linxiao",
        "name": "林晓",
        "department": [
          "LK9F8E7D6C/4"
        ],
        "position": "结算专员",
        "mobile": "13700000005",
        "telephone": "021-66660005",
        "email": "linxiao@linked-b.example.com"
      },
      {
        "corpid": "wwLINKEDB02",
        "userid": "mayun",
        "name": "马云飞",
        "department": [
          "LK9F8E7D6C/1"
        ],
        "position": "总监",
        "mobile": "13700000006",
        "telephone": "",
        "email": "mayunfei@linked-b.example.com"
      }
    ],
    "perm": {
      "1000002": {
        "userids": [
          "wwLINKEDB02/linxiao"
        ],
        "department_ids": [
          "LK4B0C1D2E/1"
        ]
      },
      "1000003": {
        "userids": [],
        "department_ids": [
          "LK4B0C1D2E/3"
        ]
      }
    }
  },
  "provider": {
    "corpid": "wwPROVIDERCORP",
    "corp_name": "云帆软件科技有限公司",
    "provider_secret": "ProviderSecretC3J27XDCG2LmlZGEONYlgCtjfIZ4S",
    "suites": [
      {
        "suite_id": "wwSUITEORDERS01",
        "name": "云帆订货通",
        "suite_secret": "SuiteSecretOrdersOcMz9CPVNPkNa1Hedcm4pMbXDu",
        "customized": false,
        "redirect_domain": "orders.yunfan.example.com",
        "install_domain": "www.yunfan.example.com",
        "callback": {
          "token": "yfOrdersTok",
          "aes_key": "CL1mHoOsFaQfDPrAJ71fTquWoGsbeKXgzg2sye9b2Ra"
        }
      },
      {
        "suite_id": "dkSTOREPATROL01",
        "name": "门店巡检（代开发）",
        "suite_secret": "TemplateSecretPatrolnn76dEyTzAeKOmXRrvftva9",
        "customized": true,
        "redirect_domain": "patrol.yunfan.example.com",
        "callback": {
          "token": "yfPatrolTok",
          "aes_key": "AW7hipTgadDZFlRJmCGmUXiAPyhzAnar3ZLt4bnlz2M"
        }
      }
    ],
    "corps": [
      {
        "corpid": "wwUPSTREAMCORP"
      },
      {
        "corpid": "wwDOWNCORP01"
      },
      {
        "corpid": "wwDOWNCORP02"
      },
      {
        "corpid": "wwRETAILCORP01",
        "corp_name": "上海静安优品便利店有限公司",
        "qualification_status": 2,
        "admins": [
          "qianwei"
        ],
        "users": [
          {
            "userid": "qianwei",
            "name": "钱伟",
            "department": [
              1
            ],
            "position": "店长",
            "mobile": "13500000101",
            "email": "qianwei@retail01.example.com"
          },
          {
            "userid": "dongxue",
            "name": "董雪",
            "department": [
              1
            ],
            "position": "店员",
            "mobile": "13500000102",
            "email": "dongxue@retail01.example.com"
          }
        ]
      },
      {
        "corpid": "wwRETAILCORP02",
        "corp_name": "杭州拱墅鲜果铺",
        "qualification_status": 1,
        "users": [
          {
            "userid": "fengtao",
            "name": "冯涛",
            "department": [
              1
            ],
            "position": "老板",
            "mobile": "13500000201",
            "email": ""
          }
        ]
      }
    ]
  }
}
]==]
